"""A long-running reader (the UI, ``mmrag chat``, a LangChain app) keeps working while another process writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from mmrag.kb.records import IMAGE
from tests.support.files import make_folder, make_image
from tests.support.kbs import open_kb


def test_a_reader_keeps_answering_and_sees_another_process_writes(tmp_path: Path, tiny_model_id: str) -> None:
    db = tmp_path / "kb"
    first = make_folder(tmp_path / "first", n_images=2)
    reader = open_kb(db, tiny_model_id)
    reader.sync(first)
    assert reader.searcher.search("a noisy test picture", threshold=0).hits
    second = tmp_path / "second"
    for i in range(40):
        make_image(second / f"new{i:02d}.png", seed=100 + i)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
    env |= {"MMRAG_HOME": str(tmp_path / "home"), "MMRAG_TEXT_RUNTIME": "torch"}
    writer = subprocess.Popen(
        [sys.executable, "-m", "mmrag", "--model", tiny_model_id, "index", str(second), "--db", str(db)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    queries = 0
    try:
        while writer.poll() is None:  # query all the while the other process writes
            reader.searcher.search("a noisy test picture", k=5, threshold=0)
            queries += 1
            time.sleep(0.05)
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert queries > 0
    time.sleep(1.1)  # the reader looks at the files at most once a second
    assert reader.counts().images == 42
    hits = reader.searcher.search("a noisy test picture", k=50, modality="image", threshold=0).hits
    assert {h.source for h in hits} >= {(second / f"new{i:02d}.png").resolve().as_posix() for i in range(40)}
    # and the reader can write again afterwards, serialised with the other process by the lock
    assert reader.sync(first).unchanged == 4
    assert len(reader.store.metadatas(IMAGE)) == 42
