"""The global options work before and after the command, for every command, and after wins over before.

Each command runs through the CLI runner until it builds its settings; ``Settings.from_env`` is replaced by
a recorder that keeps what the command asked for and stops it there (the command itself is real: its
argument parsing, its own options, the merge). A few real runs check the options take effect end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmrag.config import Settings
from mmrag.errors import MmragError
from tests.support.cli import MmragCli

GIVEN = {
    "--model": "toy",
    "--pretrained": "sometag",
    "--device": "cpu",
    "--batch-size": "7",
    "--max-megapixels": "12.5",
    "--db": "/tmp/mmrag-options-db",
    "--chroma-url": "http://127.0.0.1:9",
}
EXPECTED = {
    "model": "toy",
    "pretrained": "sometag",
    "device": "cpu",
    "batch_size": 7,
    "max_megapixels": 12.5,
    "db": Path("/tmp/mmrag-options-db"),
    "chroma_url": "http://127.0.0.1:9",
}


class _Stop(MmragError):
    """Raised by the recorder: the command got as far as its settings."""


def _image(tmp: Path) -> str:
    path = tmp / "picture.png"
    path.write_bytes(b"not checked: the command stops at its settings")
    return str(path)


def commands(tmp: Path) -> dict[str, list[str]]:
    """Each command (except toy-eval, below) with the arguments it needs."""
    return {
        "search": ["search", "a red circle"],
        "classify": ["classify", _image(tmp), "--labels", "a,b"],
        "match": ["match", _image(tmp), "a red circle"],
        "ask": ["ask", "what is red?"],
        "chat": ["chat"],
        "info": ["info"],
        "embed": ["embed", "a red circle"],
        "index": ["index", str(tmp)],
        "status": ["status"],
        "remove": ["remove", str(tmp / "picture.png")],
        "demo": ["demo"],
        "ui": ["ui"],
    }


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def record(cls: type[Settings], env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        calls.append(overrides)
        raise _Stop("stopped at the settings")

    monkeypatch.setattr(Settings, "from_env", classmethod(record))
    return calls


def _flags() -> list[str]:
    return [part for flag, value in GIVEN.items() for part in (flag, value)]


@pytest.mark.parametrize("name", sorted(commands(Path("/tmp"))))
@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_or_after_every_command(
    name: str, where: str, mmrag_cli: MmragCli, recorded: list[dict[str, Any]], tmp_path: Path
) -> None:
    command = commands(tmp_path)[name]
    args = [*_flags(), *command] if where == "before" else [*command, *_flags()]
    result = mmrag_cli(*args, check=False)
    assert result.exit_code == 1, result.stderr
    assert "stopped at the settings" in result.stderr
    got = recorded[0]
    for key, value in EXPECTED.items():
        if name == "demo" and key in ("model", "pretrained"):
            continue  # the demo is the toy's: it sets the model itself, after the settings
        assert got.get(key) == value, (key, got)


@pytest.mark.parametrize("name", ["search", "index", "ui"])
def test_after_the_command_wins(name: str, mmrag_cli: MmragCli, recorded: list[dict[str, Any]], tmp_path: Path) -> None:
    args = ["--batch-size", "3", "--db", "/tmp/before", *commands(tmp_path)[name], "--batch-size", "9"]
    args += ["--db", "/tmp/after"]
    assert mmrag_cli(*args, check=False).exit_code == 1
    assert recorded[0]["batch_size"] == 9
    assert recorded[0]["db"] == Path("/tmp/after")


def test_toy_eval_accepts_them_too(mmrag_cli: MmragCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """toy-eval evaluates the shipped toy, so the options change nothing, but they parse in either place."""

    def stop(*_: Any) -> None:
        raise _Stop("evaluation reached")

    monkeypatch.setattr("mmrag.toy.report.evaluate", stop)
    for args in (["toy-eval", *_flags()], [*_flags(), "toy-eval"]):
        result = mmrag_cli(*args, check=False)
        assert result.exit_code == 1
        assert "evaluation reached" in result.stderr


def test_global_options_are_listed_in_each_commands_help(mmrag_cli: MmragCli) -> None:
    out = mmrag_cli("search", "--help", env={"COLUMNS": "200"}).stdout
    assert "Global options" in out
    for flag in GIVEN:
        assert flag in out


def test_a_real_search_with_the_options_after_it(mmrag_cli: MmragCli, cli_demo_db: str) -> None:
    hits = mmrag_cli(
        "search", "a red circle", "--json", "--db", cli_demo_db, "--model", "toy", "--device", "cpu"
    ).json()
    assert "red_circle" in hits[0]["source"]
    status = mmrag_cli("status", "--json", "--db", cli_demo_db).json()
    assert status["model"] == "toy"
    assert status["location"] == cli_demo_db


def test_a_wrong_value_after_the_command_is_a_usage_error(mmrag_cli: MmragCli) -> None:
    result = mmrag_cli("status", "--batch-size", "many", check=False)
    assert result.exit_code == 2
    assert "--batch-size" in result.stderr
