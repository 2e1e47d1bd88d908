"""The knowledge-base CLI, in-process through ``mmrag.cli.main``: index, status, remove, info, their exit codes.

The real entry point (``python -m mmrag``) is tested in test_entry_point.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import MmragCli
from tests.support.files import make_folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = make_folder(tmp_path / "files")
    (root / "images" / "broken.jpg").write_text("not a jpeg")
    return root


def test_index_json_summary_then_rerun(mmrag_cli: MmragCli, folder: Path, tiny_model_id: str) -> None:
    summary = mmrag_cli("index", str(folder), "--model", tiny_model_id, "--json").json()
    assert {"added", "updated", "renamed", "removed", "unchanged", "skipped"} <= set(summary)
    assert (summary["added"], summary["unchanged"]) == (5, 0)
    assert summary["skipped"] == [
        {"source": (folder / "images" / "broken.jpg").resolve().as_posix(), "reason": summary["skipped"][0]["reason"]}
    ]
    again = mmrag_cli("index", str(folder), "--json").json()  # model from the KB
    assert (again["added"], again["unchanged"]) == (0, 5)


def test_index_prints_progress_and_a_summary(mmrag_cli: MmragCli, folder: Path, tiny_model_id: str) -> None:
    result = mmrag_cli("--model", tiny_model_id, "index", str(folder))
    assert "added 5, updated 0, renamed 0, removed 0, unchanged 0, skipped 1" in result.stdout
    assert "broken.jpg" in result.stderr
    assert "file/s" in result.stderr or "it/s" in result.stderr or "file" in result.stderr  # tqdm's bar


def test_status_and_remove(mmrag_cli: MmragCli, tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    db = tmp_path / "custom-db"
    mmrag_cli("index", str(folder), "--db", str(db), "--model", tiny_model_id)
    status = mmrag_cli("status", "--db", str(db), "--json").json()
    assert status["location"] == str(db)
    assert status["model"] == tiny_model_id
    assert (status["images"], status["text_documents"]) == (3, 2)
    removed = mmrag_cli("remove", str(folder / "notes"), "--db", str(db), "--json").json()
    assert removed["removed"] == status["text_chunks"]
    status = mmrag_cli("status", "--db", str(db), "--json").json()
    assert status["text_documents"] == 0


def test_errors_exit_1_with_a_message(mmrag_cli: MmragCli, tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    mmrag_cli("index", str(folder), "--model", tiny_model_id)
    mismatch = mmrag_cli("index", str(folder), "--model", "toy", check=False)
    assert mismatch.exit_code == 1
    assert mismatch.stderr.startswith("error: the knowledge base at")
    assert "Traceback" not in mismatch.stderr
    missing = mmrag_cli("index", str(tmp_path / "nope"), "--model", tiny_model_id, check=False)
    assert missing.exit_code == 1
    assert "not a folder" in missing.stderr
    usage = mmrag_cli("remove", check=False)
    assert usage.exit_code == 2


def test_info_prepares_the_query_text_runtime(mmrag_cli: MmragCli, seed_onnx_cache: Callable[[Path], Path]) -> None:
    """``info`` reports the query text runtime, and ``--prepare`` switches it to ONNX Runtime.

    The export itself (seconds of torch.onnx) is the session's one, copied into this home's cache before
    ``--prepare``: what is checked here is the command; the export is checked in tests/unit/test_onnx_text.py.
    """
    auto = {"MMRAG_TEXT_RUNTIME": "auto"}  # the default, as a user has it
    before = mmrag_cli("--model", "toy", "info", "--json", env=auto).json()
    assert before["model"] == "toy"
    assert before["text_runtime"] == "torch (onnxruntime not prepared yet)"
    seed_onnx_cache(mmrag_cli.home / "onnx")
    after = mmrag_cli("--model", "toy", "info", "--prepare", "--json", env=auto).json()
    (export,) = (mmrag_cli.home / "onnx").glob("text-*.onnx")
    assert after["text_runtime"] == f"onnxruntime ({export.name})"
