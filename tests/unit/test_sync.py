"""Folder sync against real embedded Chroma: add, unchanged, modify, touch, delete, rename, bad files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmrag.errors import ConfigError, DocumentError
from mmrag.files.thumbnails import DATA_URI_PREFIX
from mmrag.kb.records import IMAGE, TEXT, image_id
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.files import make_folder, make_image
from tests.support.kbs import open_kb, snapshot


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "files")


@pytest.fixture
def kb(tmp_path: Path, tiny_model_id: str) -> KnowledgeBase:
    return open_kb(tmp_path / "db", tiny_model_id)


def _no_embedding(monkeypatch: pytest.MonkeyPatch, kb: KnowledgeBase) -> None:
    """Make any embedding or image decoding fail loudly."""

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("embedding work was done")

    monkeypatch.setattr(kb.clip, "try_encode_images", boom)
    monkeypatch.setattr(kb.clip, "encode_texts", boom)
    monkeypatch.setattr("mmrag.files.images.load_image", boom)


def test_first_sync_adds_everything_with_metadata(kb: KnowledgeBase, folder: Path) -> None:
    report = kb.sync(folder, metadata={"project": "demo"})
    assert (report.added, report.updated, report.removed, report.renamed, report.unchanged) == (5, 0, 0, 0, 0)
    assert report.skipped == []
    counts = kb.counts()
    assert counts.images == 3
    assert counts.text_sources == 2
    assert counts.text_chunks == report.embedded_chunks >= 2

    [img0] = kb.store.get(IMAGE, [image_id((folder / "images" / "img0.png").resolve().as_posix())])
    meta = img0.metadata
    assert meta["modality"] == "image"
    assert meta["source"] == (folder / "images" / "img0.png").resolve().as_posix()
    assert meta["caption"] == "a noisy test picture"
    assert meta["project"] == "demo"
    assert (meta["width"], meta["height"]) == (64, 48)
    assert meta["size"] == (folder / "images" / "img0.png").stat().st_size
    assert len(str(meta["sha256"])) == 64
    assert img0.document.startswith(DATA_URI_PREFIX)
    assert len(img0.document) < 20_000  # a thumbnail, not the file

    chunks = kb.store.metadatas(TEXT)
    cats = sorted((m["chunk"], m["chunks"]) for m in chunks.values() if str(m["source"]).endswith("cats.md"))
    assert [c for c, _ in cats] == list(range(len(cats)))
    assert {n for _, n in cats} == {len(cats)}


def test_rerun_on_unchanged_folder_does_no_work_and_changes_nothing(
    kb: KnowledgeBase, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb.sync(folder)
    before = snapshot(kb)
    _no_embedding(monkeypatch, kb)
    report = kb.sync(folder)
    assert (report.added, report.updated, report.removed, report.renamed) == (0, 0, 0, 0)
    assert report.unchanged == 5
    assert snapshot(kb) == before


def test_modified_files_are_reembedded(kb: KnowledgeBase, folder: Path) -> None:
    kb.sync(folder)
    img = folder / "images" / "img1.png"
    old = kb.store.get(IMAGE, [image_id(img.resolve().as_posix())], embeddings=True)[0]
    make_image(img, seed=99)
    (folder / "notes" / "coffee.txt").write_text("Tea is brewed by steeping leaves.")
    report = kb.sync(folder)
    assert (report.updated, report.added, report.unchanged) == (2, 0, 3)
    new = kb.store.get(IMAGE, [old.id], embeddings=True)[0]
    assert new.metadata["sha256"] != old.metadata["sha256"]
    assert not np.allclose(new.embedding, old.embedding)
    coffee = [m for m in kb.store.metadatas(TEXT).values() if str(m["source"]).endswith("coffee.txt")]
    assert len(coffee) == 1  # fewer chunks than before: the stale ones are gone


def test_touched_but_identical_file_is_restamped_not_reembedded(
    kb: KnowledgeBase, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb.sync(folder)
    img = folder / "images" / "img2.png"
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    _no_embedding(monkeypatch, kb)
    report = kb.sync(folder)
    assert report.unchanged == 5
    [record] = kb.store.get(IMAGE, [image_id(img.resolve().as_posix())])
    assert record.metadata["mtime_ns"] == img.stat().st_mtime_ns


def test_deleted_files_are_removed(kb: KnowledgeBase, folder: Path) -> None:
    kb.sync(folder)
    (folder / "images" / "img2.png").unlink()
    (folder / "notes" / "cats.md").unlink()
    report = kb.sync(folder)
    assert report.removed == 2
    assert kb.counts().images == 2
    assert kb.counts().text_sources == 1


def test_renamed_and_moved_files_keep_their_vectors_without_reembedding(
    kb: KnowledgeBase, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb.sync(folder)
    before = snapshot(kb)
    (folder / "images" / "img1.png").rename(folder / "images" / "renamed.png")
    (folder / "archive").mkdir()
    shutil.move(folder / "notes" / "cats.md", folder / "archive" / "felines.md")
    _no_embedding(monkeypatch, kb)
    report = kb.sync(folder)
    assert (report.renamed, report.added, report.removed, report.updated) == (2, 0, 0, 0)
    after = snapshot(kb)
    new_id = image_id((folder / "images" / "renamed.png").resolve().as_posix())
    old_id = image_id((folder / "images" / "img1.png").resolve().as_posix())
    assert old_id not in after[IMAGE]
    assert after[IMAGE][new_id][2] == before[IMAGE][old_id][2]  # the same vector
    assert after[IMAGE][new_id][1]["source"].endswith("renamed.png")
    felines = [m for _, m, _ in after[TEXT].values() if m["source"].endswith("archive/felines.md")]
    cats = [m for _, m, _ in before[TEXT].values() if m["source"].endswith("cats.md")]
    assert len(felines) == len(cats) > 0
    assert {m["title"] for m in felines} == {"felines.md"}


def test_bad_files_are_skipped_and_neighbours_stay_aligned(kb: KnowledgeBase, folder: Path, tiny_clip: object) -> None:
    images = folder / "images"
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (images / "fake.jpg").write_text("I am text")
    (images / "truncated.jpg").write_bytes(b"")
    (folder / "notes" / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    (folder / "notes" / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    (folder / "notes" / "empty.md").write_text("   \n")
    (folder / "data.csv").write_text("a,b\n1,2\n")  # not a document type: ignored, not skipped
    report = kb.sync(folder)
    skipped = {Path(s.source).name: s.reason for s in report.skipped}
    assert set(skipped) == {"broken.png", "fake.jpg", "truncated.jpg", "binary.txt", "latin1.md", "empty.md"}
    assert "UTF-8" in skipped["latin1.md"]
    assert report.ignored == 1
    assert report.added == 5
    # Each good image's stored vector is exactly its own embedding, and its metadata names it.
    stored = kb.store.get(IMAGE, list(kb.store.metadatas(IMAGE)), embeddings=True)
    assert len(stored) == 3
    for record in stored:
        own = kb.clip.encode_images([str(record.metadata["source"])])[0]
        np.testing.assert_allclose(record.embedding, own, atol=1e-5)
        assert record.id == image_id(str(record.metadata["source"]))


def test_file_that_turns_bad_loses_its_stale_version(kb: KnowledgeBase, folder: Path) -> None:
    kb.sync(folder)
    (folder / "images" / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage")
    report = kb.sync(folder)
    assert [Path(s.source).name for s in report.skipped] == ["img1.png"]
    assert kb.counts().images == 2


def test_ids_are_deterministic(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    a = open_kb(tmp_path / "a", tiny_model_id)
    b = open_kb(tmp_path / "b", tiny_model_id)
    a.sync(folder)
    b.sync(folder)
    assert snapshot(a) == snapshot(b)


def test_caption_changes_update_metadata_only(kb: KnowledgeBase, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kb.sync(folder)
    (folder / "images" / "img0.txt").write_text("a new caption")
    (folder / "images" / "captions.json").write_text('{"img2.png": "from the captions file"}')
    _no_embedding(monkeypatch, kb)
    kb.sync(folder)
    captions = {Path(str(m["source"])).name: m["caption"] for m in kb.store.metadatas(IMAGE).values()}
    assert captions == {"img0.png": "a new caption", "img1.png": "", "img2.png": "from the captions file"}


def test_reserved_metadata_keys_are_refused(kb: KnowledgeBase, folder: Path) -> None:
    with pytest.raises(ConfigError, match="source"):
        kb.sync(folder, metadata={"source": "x"})


def test_sync_of_a_missing_folder_is_a_typed_error(kb: KnowledgeBase, tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="not a folder"):
        kb.sync(tmp_path / "nope")


def test_syncing_one_folder_leaves_another_alone(kb: KnowledgeBase, tmp_path: Path) -> None:
    one = make_folder(tmp_path / "one", n_images=2)
    two = make_folder(tmp_path / "two", n_images=1)
    kb.sync(one)
    kb.sync(two)
    shutil.rmtree(two / "notes")
    report = kb.sync(two)
    assert report.removed == 2
    assert kb.counts().images == 3
    assert kb.counts().text_sources == 2


def test_add_files_adds_without_removing(kb: KnowledgeBase, folder: Path, tmp_path: Path) -> None:
    kb.sync(folder)
    extra = make_image(tmp_path / "upload" / "new.png", seed=42)
    report = kb.add_files([extra, tmp_path / "missing.png"])
    assert report.added == 1
    assert [s.reason for s in report.skipped] == ["no such file"]
    assert kb.counts().images == 4


def test_progress_callback_counts_files(kb: KnowledgeBase, folder: Path) -> None:
    seen = []
    kb.sync(folder, on_progress=seen.append)
    assert [p.done for p in seen] == [0, 1, 2, 3, 4, 5]  # 0: the files found, before embedding starts
    assert {p.total for p in seen} == {5}
    assert seen[0].found == 6  # five documents and one caption sidecar
