"""One-shot commands in fresh processes: what they import. Timings are in bench/cli_speed.py (docs/benchmarks.md);
here the imports are checked, since they are what made a one-shot search take seconds: torch, open_clip and
torchvision for one short query text."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import MmragCli, isolated_environ

HEAVY = ("torch", "open_clip", "torchvision", "langchain_core", "langchain", "streamlit")

# Run the console script's function, then say which heavy packages this process imported and what it exited with.
_RUN = f"""
import json, sys
sys.argv = ["mmrag", *sys.argv[1:]]
from mmrag.cli import main
code = 0
try:
    main()
except SystemExit as e:
    code = e.code or 0
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
print("\\n" + json.dumps({{"code": code, "heavy": heavy}}))
"""


def _fresh(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, list[str], str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=isolated_environ(home, env),
    )
    *out, last = proc.stdout.rstrip("\n").split("\n")
    report = json.loads(last)
    return report["code"], report["heavy"], "\n".join(out), proc.stderr


@pytest.fixture
def carded_home(tmp_path: Path, cli_demo_db: str, seed_onnx_cache: Callable[[Path], Path], mmrag_cli: MmragCli) -> Path:
    """A home whose ONNX cache holds the toy's export and its query card (as ``mmrag demo`` leaves it)."""
    seed_onnx_cache(mmrag_cli.home / "onnx")
    mmrag_cli("--model", "toy", "info", "--prepare", env={"MMRAG_TEXT_RUNTIME": "auto"})
    assert list((mmrag_cli.home / "onnx").glob("query-*.json"))
    return mmrag_cli.home


def test_a_toy_text_search_on_a_cached_export_imports_no_torch(carded_home: Path, cli_demo_db: str) -> None:
    auto = {"MMRAG_TEXT_RUNTIME": "auto"}  # the default, as a user has it
    code, heavy, out, err = _fresh(carded_home, "search", "a red circle", "--db", cli_demo_db, "--json", env=auto)
    assert code == 0, err
    assert heavy == []
    hits = json.loads(out)
    assert hits
    assert "red_circle" in hits[0]["source"]
    code, heavy, out, err = _fresh(carded_home, "search", "一个红色的圆形", "--db", cli_demo_db, "-k", "3", env=auto)
    assert code == 0, err
    assert heavy == []
    assert "red_circle" in out.splitlines()[0]


def test_the_same_search_on_torch_gives_the_same_hits(carded_home: Path, cli_demo_db: str, mmrag_cli: MmragCli) -> None:
    """The cached export and torch rank alike (scores to 3 decimals)."""
    args = ("search", "a green triangle", "--db", cli_demo_db, "--json", "--threshold", "0")
    code, heavy, out, err = _fresh(carded_home, *args, env={"MMRAG_TEXT_RUNTIME": "auto"})
    assert code == 0, err
    assert heavy == []
    on_torch = mmrag_cli(*args).json()  # MMRAG_TEXT_RUNTIME=torch
    onnx = json.loads(out)
    assert [h["id"] for h in onnx] == [h["id"] for h in on_torch]
    assert [round(h["score"], 3) for h in onnx] == [round(h["score"], 3) for h in on_torch]


def test_without_a_cached_export_a_search_runs_on_torch_and_exports_nothing(tmp_path: Path, cli_demo_db: str) -> None:
    home = tmp_path / "home"
    code, heavy, _out, err = _fresh(
        home, "search", "a red circle", "--db", cli_demo_db, env={"MMRAG_TEXT_RUNTIME": "auto"}
    )
    assert code == 0, err
    assert "torch" in heavy
    assert not list(home.glob("onnx/*.onnx"))  # one query doesn't repay an export


def test_argument_errors_come_before_anything_loads(tmp_path: Path, cli_demo_db: str) -> None:
    """A missing image file is reported without importing torch (nor chromadb, for classify and match)."""
    missing = str(tmp_path / "missing.png")
    for args in (
        ("search", "--image", missing, "--db", cli_demo_db),
        ("classify", missing, "--labels", "a,b", "--model", "toy"),
        ("match", missing, "a red circle", "--model", "toy"),
    ):
        code, heavy, _, err = _fresh(tmp_path / "home", *args)
        assert code == 1, err
        assert "missing.png" in err
        assert "does not exist" in err
        assert heavy == []
    code, heavy, _, err = _fresh(tmp_path / "home", "search", "--db", cli_demo_db)  # no query at all
    assert code == 2, err
    assert heavy == []


def test_the_demo_prepares_the_query_text_runtime(tmp_path: Path, seed_onnx_cache: Callable[[Path], Path]) -> None:
    """``mmrag demo`` ends by preparing the toy's ONNX text runtime (here it finds the session's export in its
    cache), which writes the card later searches use; with MMRAG_TEXT_RUNTIME=torch it leaves it alone."""
    from mmrag.cli.kb import _prepare_query_texts
    from mmrag.model.clip import ClipModel

    runtime = tmp_path / "onnx"
    export = seed_onnx_cache(runtime)
    clip = ClipModel("toy", device="cpu", text_runtime="auto", runtime_dir=runtime)
    assert _prepare_query_texts(clip, "auto") == f"onnxruntime ({export.name})"
    assert list(runtime.glob("query-*.json"))
    assert _prepare_query_texts(clip, "torch") is None
