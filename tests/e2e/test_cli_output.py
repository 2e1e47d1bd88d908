"""Snapshots of what people read: the CLI's human-readable output, on the toy demo (as rclip checks its own).

Each test compares normalised output (tmp paths and timings become placeholders, see
tests/support/snapshots.py) with ``tests/e2e/__snapshots__/test_cli_output.ambr`` (syrupy). After an
intended change of output, regenerate them, read the diff, and commit it:

    pytest tests/e2e/test_cli_output.py --snapshot-update
    git diff tests/e2e/__snapshots__/

A test fails when its snapshot is missing, and ``--snapshot-update`` also removes snapshots no test uses.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from mmrag.toy.shapes import CLASSES, draw
from tests.support.cli import MmragCli
from tests.support.files import make_folder
from tests.support.snapshots import normalise


def test_root_help(mmrag_cli: MmragCli, snapshot: SnapshotAssertion, monkeypatch: pytest.MonkeyPatch) -> None:
    # Typer draws help with rich: a fixed width and no colours, whatever the terminal or CI says.
    monkeypatch.setattr("typer.rich_utils.MAX_WIDTH", 100)
    monkeypatch.setattr("typer.rich_utils.FORCE_TERMINAL", False)
    assert normalise(mmrag_cli("--help").stdout) == snapshot


def test_info(mmrag_cli: MmragCli, snapshot: SnapshotAssertion) -> None:
    assert normalise(mmrag_cli("--model", "toy", "info").stdout) == snapshot


def test_index_summary(mmrag_cli: MmragCli, tmp_path: Path, tiny_model_id: str, snapshot: SnapshotAssertion) -> None:
    folder = make_folder(tmp_path / "files")
    (folder / "images" / "broken.jpg").write_text("not a jpeg")
    result = mmrag_cli("index", str(folder), "--model", tiny_model_id)
    skipped = [line for line in result.stderr.splitlines() if line.startswith("  skipped ")]  # not tqdm's bar
    assert normalise("\n".join([result.stdout, *skipped]), files=folder) == snapshot
    again = mmrag_cli("index", str(folder))
    assert normalise(again.stdout) == snapshot(name="rerun")


def test_status(mmrag_cli: MmragCli, cli_demo_home: Path, cli_demo_db: str, snapshot: SnapshotAssertion) -> None:
    assert normalise(mmrag_cli("status", "--db", cli_demo_db).stdout, home=cli_demo_home) == snapshot


def test_search(mmrag_cli: MmragCli, cli_demo_home: Path, cli_demo_db: str, snapshot: SnapshotAssertion) -> None:
    found = mmrag_cli("search", "a red circle", "--db", cli_demo_db, "-k", "5")
    assert normalise(found.stdout, home=cli_demo_home) == snapshot
    nothing = mmrag_cli("search", "a red circle", "--db", cli_demo_db, "--modality", "text", "--threshold", "0.9999")
    assert normalise(nothing.stdout) == snapshot(name="nothing above the threshold")


def test_ask_retrieval_only(
    mmrag_cli: MmragCli, cli_demo_home: Path, cli_demo_db: str, snapshot: SnapshotAssertion
) -> None:
    answer = mmrag_cli("ask", "a red circle", "--db", cli_demo_db)
    assert normalise(answer.stdout, home=cli_demo_home) == snapshot


def test_classify_and_match(mmrag_cli: MmragCli, tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    image = tmp_path / "star.png"
    draw(CLASSES[11], random.Random(4), size=96).save(image)  # a blue star
    labels = "blue star,red circle,green square"
    classified = mmrag_cli("--model", "toy", "classify", str(image), "--labels", labels)
    assert normalise(classified.stdout) == snapshot(name="classify")
    circle = tmp_path / "circle.png"
    draw(CLASSES[0], random.Random(5), size=96).save(circle)  # a red circle
    yes = mmrag_cli("--model", "toy", "match", str(circle), "a red circle")
    no = mmrag_cli("--model", "toy", "match", str(circle), "a purple star")
    assert normalise(yes.stdout + no.stdout) == snapshot(name="match")
