"""The knowledge-base CLI through its real entry point: index, status, remove, and their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kbutil import make_folder


def mmrag(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")} | {"MMRAG_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "mmrag", *args], capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = make_folder(tmp_path / "files")
    (root / "images" / "broken.jpg").write_text("not a jpeg")
    return root


def test_index_json_summary_then_rerun(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    home = tmp_path / "home"
    out = mmrag("index", str(folder), "--model", tiny_model_id, "--json", home=home).stdout
    summary = json.loads(out)
    assert {"added", "updated", "renamed", "removed", "unchanged", "skipped"} <= set(summary)
    assert (summary["added"], summary["unchanged"]) == (5, 0)
    assert summary["skipped"] == [
        {"source": (folder / "images" / "broken.jpg").resolve().as_posix(), "reason": summary["skipped"][0]["reason"]}
    ]
    again = json.loads(mmrag("index", str(folder), "--json", home=home).stdout)  # model from the KB
    assert (again["added"], again["unchanged"]) == (0, 5)


def test_index_prints_progress_and_a_summary(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    proc = mmrag("--model", tiny_model_id, "index", str(folder), home=tmp_path / "home")
    assert "added 5, updated 0, renamed 0, removed 0, unchanged 0, skipped 1" in proc.stdout
    assert "broken.jpg" in proc.stderr
    assert "file/s" in proc.stderr or "it/s" in proc.stderr or "file" in proc.stderr  # tqdm's bar


def test_status_and_remove(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    db = tmp_path / "custom-db"
    home = tmp_path / "home"
    mmrag("index", str(folder), "--db", str(db), "--model", tiny_model_id, home=home)
    status = json.loads(mmrag("status", "--db", str(db), "--json", home=home).stdout)
    assert status["location"] == str(db)
    assert status["model"] == tiny_model_id
    assert (status["images"], status["text_documents"]) == (3, 2)
    removed = json.loads(mmrag("remove", str(folder / "notes"), "--db", str(db), "--json", home=home).stdout)
    assert removed["removed"] == status["text_chunks"]
    status = json.loads(mmrag("status", "--db", str(db), "--json", home=home).stdout)
    assert status["text_documents"] == 0


def test_errors_exit_1_with_a_message(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    home = tmp_path / "home"
    mmrag("index", str(folder), "--model", tiny_model_id, home=home)
    proc = mmrag("index", str(folder), "--model", "toy", home=home, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: the knowledge base at")
    assert "Traceback" not in proc.stderr
    missing = mmrag("index", str(tmp_path / "nope"), "--model", tiny_model_id, home=home, check=False)
    assert missing.returncode == 1
    assert "not a folder" in missing.stderr
    usage = mmrag("remove", home=home, check=False)
    assert usage.returncode == 2


def test_info_prepares_the_query_text_runtime(tmp_path: Path) -> None:
    home = tmp_path / "home"
    before = json.loads(mmrag("--model", "toy", "info", "--json", home=home).stdout)
    assert before["model"] == "toy"
    assert before["text_runtime"] == "torch (onnxruntime not prepared yet)"
    after = json.loads(mmrag("--model", "toy", "info", "--prepare", "--json", home=home).stdout)
    (export,) = (home / "onnx").glob("text-*.onnx")
    assert after["text_runtime"] == f"onnxruntime ({export.name})"
