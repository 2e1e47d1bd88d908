"""The knowledge base's store with other, real processes: a second writer, concurrent writers, a writer killed
mid-index, and plain chromadb reading what mmrag wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmrag.errors import KnowledgeBaseLockedError
from tests.support.files import make_folder, make_image
from tests.support.kbs import open_kb, snapshot


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "files")


def _writer_script(db: Path, folder: Path, model: str, hold: float, lock_timeout: float = 10.0) -> str:
    return textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from mmrag.factory import open_knowledge_base
        from mmrag.config import Settings
        settings = Settings.from_env(
            {{}}, home=Path({str(db.parent)!r}), db=Path({str(db)!r}), model={model!r}, ocr="off"
        )
        kb = open_knowledge_base(settings)
        kb.store.lock_timeout = {lock_timeout}
        with kb.store.write_lock():
            print("locked", flush=True)
            time.sleep({hold})
        print(kb.sync(Path({str(folder)!r})).to_json()["added"], flush=True)
        """
    )


def test_second_writer_gets_a_clear_error(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    db = tmp_path / "db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _writer_script(db, folder, tiny_model_id, hold=30)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        kb = open_kb(db, tiny_model_id)
        kb.store.lock_timeout = 0.5
        with pytest.raises(KnowledgeBaseLockedError, match="another process is writing"):
            kb.sync(folder)
    finally:
        holder.kill()
        holder.wait()


def test_two_concurrent_writers_are_serialised(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    db = tmp_path / "db"
    # The waiting writer waits as long as the other's sync takes (its first sync loads the model, inside the
    # lock: over the default 10 s on a busy machine); the timeout itself is test_second_writer_gets_a_clear_error's.
    script = _writer_script(db, folder, tiny_model_id, hold=0.5, lock_timeout=120)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        outputs.append(out.split()[-1])
    assert sorted(outputs) == ["0", "5"]  # one added everything, the other found it done
    reference = open_kb(tmp_path / "ref", tiny_model_id)
    reference.sync(folder)
    assert snapshot(open_kb(db, None)) == snapshot(reference)


def test_kill_9_mid_index_then_rerun_converges(tmp_path: Path, tiny_model_id: str) -> None:
    folder = tmp_path / "many"
    for i in range(40):
        make_image(folder / f"img{i:02d}.png", seed=i)
    (folder / "notes.md").write_text("Notes about noise. " * 50)
    db = tmp_path / "db"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from mmrag.factory import open_knowledge_base
        from mmrag.config import Settings
        import mmrag.kb.sync
        mmrag.kb.sync.GROUP_FILES = 4
        settings = Settings.from_env({{}}, home=Path({str(tmp_path)!r}), db=Path({str(db)!r}),
                                     model={tiny_model_id!r}, batch_size=2, ocr="off")
        kb = open_knowledge_base(settings)
        def slow(progress):
            print(progress.done, flush=True)
            time.sleep(0.2)
        kb.sync(Path({str(folder)!r}), on_progress=slow)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if int(line) >= 10:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    interrupted = open_kb(db, None)
    partial = interrupted.counts().images
    assert 0 < partial < 40
    report = interrupted.sync(folder)
    assert report.added + report.unchanged == 41
    reference = open_kb(tmp_path / "ref", tiny_model_id)
    reference.sync(folder)
    assert snapshot(interrupted) == snapshot(reference)


def test_plain_chromadb_sees_sensible_collections(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    open_kb(tmp_path / "db", tiny_model_id).sync(folder)
    script = textwrap.dedent(
        f"""
        import json, chromadb
        client = chromadb.PersistentClient(path={str(tmp_path / "db")!r})
        images = client.get_collection("mmrag_images").get(include=["metadatas", "documents"])
        texts = client.get_collection("mmrag_texts").get(include=["metadatas", "documents"])
        print(json.dumps({{
            "names": sorted(c.name for c in client.list_collections()),
            "label": client.get_collection("mmrag_images").metadata["mmrag_label"],
            "image_ids": images["ids"], "image_meta": images["metadatas"], "texts": texts["documents"],
        }}))
        """
    )
    out = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert out["names"] == ["mmrag_images", "mmrag_texts"]
    assert out["label"] == tiny_model_id
    assert len(out["image_ids"]) == 3
    assert all(i.startswith("img-") for i in out["image_ids"])
    assert {m["modality"] for m in out["image_meta"]} == {"image"}
    assert all(m["source"].startswith("/") for m in out["image_meta"])
    assert any("Cats are small" in d for d in out["texts"])
