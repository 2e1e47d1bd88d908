"""Habits of good CLIs: ``-`` reads stdin, ``--json`` errors are JSON, ``remove`` says what it didn't find,
help texts read as sentences, ``info`` tells a cached export apart, probabilities read as percentages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mmrag.cli.search import percent
from tests.support.cli import MmragCli
from tests.support.kbs import copy_kb

# --- '-' reads stdin ---------------------------------------------------------------------------------------


def test_dash_reads_the_query_from_stdin(mmrag_cli: MmragCli, cli_demo_db: str) -> None:
    typed = mmrag_cli("search", "a red circle", "--db", cli_demo_db, "--json").json()
    piped = mmrag_cli("search", "-", "--db", cli_demo_db, "--json", input="a red circle\n").json()
    assert [h["id"] for h in piped] == [h["id"] for h in typed]


def test_dash_reads_the_question_and_the_description(mmrag_cli: MmragCli, cli_demo_db: str) -> None:
    answer = mmrag_cli("ask", "-", "--db", cli_demo_db, "--json", input="which shapes are red?\n").json()
    assert answer["question"] == "which shapes are red?"
    image = next(Path(cli_demo_db).parent.glob("files/images/red_circle_*.png"))
    match = mmrag_cli("match", str(image), "-", "--model", "toy", "--json", input="a red circle").json()
    assert match["match"] is True


def test_an_empty_stdin_is_a_usage_error(mmrag_cli: MmragCli, cli_demo_db: str) -> None:
    result = mmrag_cli("search", "-", "--db", cli_demo_db, input="", check=False)
    assert result.exit_code == 2
    assert "stdin is empty" in result.stderr


# --- --json errors ------------------------------------------------------------------------------------------


def test_json_errors_are_json_with_the_same_exit_codes(mmrag_cli: MmragCli, tmp_path: Path) -> None:
    missing_kb = mmrag_cli("status", "--db", str(tmp_path / "typo"), "--json", check=False)
    assert missing_kb.exit_code == 1
    error = missing_kb.json()
    assert error["type"] == "NoKnowledgeBaseError"
    assert "typo" in error["error"]
    plain = mmrag_cli("status", "--db", str(tmp_path / "typo"), check=False)
    assert plain.exit_code == 1
    assert plain.stderr.startswith("error: ")

    image = mmrag_cli("classify", str(tmp_path / "none.png"), "--labels", "a,b", "--json", check=False)
    assert image.exit_code == 1
    assert image.json()["type"] == "ImageNotFoundError"

    usage = mmrag_cli("search", "--json", check=False)  # no query
    assert usage.exit_code == 2
    assert usage.json() == {"error": "Invalid value: give a TEXT query, an --image, or both", "type": "BadParameter"}


# --- remove -------------------------------------------------------------------------------------------------


def test_remove_says_what_is_not_in_the_knowledge_base(mmrag_cli: MmragCli, cli_demo_db: str, tmp_path: Path) -> None:
    db = copy_kb(Path(cli_demo_db), tmp_path / "kb")
    images = Path(cli_demo_db).parent / "files" / "images"
    present = str(next(images.glob("red_circle_*.png")))
    absent = str(tmp_path / "never-indexed.png")

    result = mmrag_cli("remove", present, absent, "--db", str(db), check=False)
    assert result.exit_code == 1
    assert "removed 1 document\n" in result.stdout
    assert "not in the knowledge base" in result.stderr
    assert "never-indexed.png" in result.stderr

    again = mmrag_cli("remove", present, "--id", "img-nosuchid", "--db", str(db), "--json", check=False)
    assert again.exit_code == 1
    data = again.json()
    assert data["removed"] == 0
    assert data["not_found"] == [present, "img-nosuchid"]
    assert data["type"] == "NotInKnowledgeBase"


# --- help texts ---------------------------------------------------------------------------------------------


def test_command_summaries_are_one_line(mmrag_cli: MmragCli) -> None:
    """The root help lists each command on one line (a summary cut mid-sentence once wrapped into two)."""
    from mmrag.cli import cli

    for command in cli.registered_commands:
        summary = (command.callback.__doc__ or "").strip().split("\n\n")[0]  # type: ignore[union-attr]
        assert "\n" not in summary, command.name
    out = mmrag_cli("--help", env={"COLUMNS": "200"}).stdout
    panel = out[out.index("Commands") :]
    rows = [line for line in panel.splitlines() if line.startswith("│")]
    assert len(rows) == len(cli.registered_commands)


def test_help_paragraphs_have_no_hard_breaks(mmrag_cli: MmragCli) -> None:
    out = mmrag_cli("ask", "--help", env={"COLUMNS": "200"}).stdout
    assert "With --llm, a cited answer; without, the best images and passages (retrieval only)." in out


# --- info and a cached export -------------------------------------------------------------------------------


def test_info_reports_a_cached_export_as_ready(mmrag_cli: MmragCli, seed_onnx_cache: Callable[[Path], Path]) -> None:
    auto = {"MMRAG_TEXT_RUNTIME": "auto"}
    export = seed_onnx_cache(mmrag_cli.home / "onnx")
    mmrag_cli("--model", "toy", "info", "--prepare", env=auto)
    later = mmrag_cli("--model", "toy", "info", "--json", env=auto).json()  # a later run, nothing prepared in it
    assert later["text_runtime"] == f"onnxruntime ({export.name})"


def test_info_on_a_cached_export_without_a_card(mmrag_cli: MmragCli, seed_onnx_cache: Callable[[Path], Path]) -> None:
    """An export from before query cards: info says it is cached and will load, not "not prepared yet"."""
    export = seed_onnx_cache(mmrag_cli.home / "onnx")
    info = mmrag_cli("--model", "toy", "info", "--json", env={"MMRAG_TEXT_RUNTIME": "auto"}).json()
    assert info["text_runtime"] == f"torch (onnxruntime ready to load: {export.name} is cached)"


# --- percentages --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "shown"),
    [(3e-10, "<0.01%"), (0.0, "0.00%"), (0.0001, "0.01%"), (0.5, "50.00%"), (0.99999, ">99.99%"), (1.0, "100.00%")],
)
def test_percent(p: float, shown: str) -> None:
    assert percent(p) == shown


def test_classify_prints_percentages(mmrag_cli: MmragCli, cli_demo_db: str) -> None:
    image = next(Path(cli_demo_db).parent.glob("files/images/red_circle_*.png"))
    out = mmrag_cli("classify", str(image), "--labels", "red circle,blue square,green star", "--model", "toy").stdout
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert all(re.match(r"^\s*[<>]?\d+\.\d\d%  ", line) for line in lines), lines
    assert lines[0].split("  (fits")[0].endswith("red circle")
    assert all(re.search(r"\(fits the image: [<>]?\d+\.\d\d%\)$", line) for line in lines), lines
