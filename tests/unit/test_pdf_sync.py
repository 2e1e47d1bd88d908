"""Syncing documents with pictures (mmrag/kb/sync.py, mmrag/kb/pictures.py): moves, reruns, OCR turned on later."""

from __future__ import annotations

from pathlib import Path

import chromadb
import pytest

from mmrag.kb.pictures import PictureOptions
from mmrag.kb.records import IMAGE, TEXT
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from tests.support.ocr_images import EN_FONTS, fonts_present, render
from tests.support.pdfs import PageSpec, write_pdf

PAGES = [
    PageSpec(["First page text about espresso."], [("A red chart", "red")]),
    PageSpec(["Second page text about tea."], [("A blue chart", "blue")]),
]


def _kb(tmp_path: Path, clip: ClipModel, ocr: str = "off") -> KnowledgeBase:
    kb = KnowledgeBase(chromadb.PersistentClient(str(tmp_path / "kb")), clip, location=str(tmp_path / "kb"))
    kb.pictures = PictureOptions(ocr=ocr)
    return kb


def _by_source(kb: KnowledgeBase) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for modality in (IMAGE, TEXT):
        for id_, meta in kb.store.metadatas(modality).items():
            out.setdefault(Path(str(meta["source"])).name, []).append(id_)
    return out


def test_a_pdf_is_indexed_once_and_then_unchanged(tmp_path: Path, tiny_clip: ClipModel) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "paper.pdf", PAGES)
    kb = _kb(tmp_path, tiny_clip)
    first = kb.sync(folder)
    assert (first.added, first.figures, first.embedded_chunks) == (1, 2, 2)
    records = _by_source(kb)["paper.pdf"]
    assert len(records) == 2 + 2 + 2  # chunks, figures, caption children
    again = kb.sync(folder)
    assert (again.unchanged, again.added, again.updated) == (1, 0, 0)


def test_a_moved_pdf_keeps_its_records_and_their_links(tmp_path: Path, tiny_clip: ClipModel) -> None:
    folder = tmp_path / "docs"
    (folder / "old").mkdir(parents=True)
    write_pdf(folder / "old" / "paper.pdf", PAGES)
    kb = _kb(tmp_path, tiny_clip)
    kb.sync(folder)
    (folder / "new").mkdir()
    (folder / "old" / "paper.pdf").rename(folder / "new" / "paper.pdf")
    report = kb.sync(folder)
    assert (report.renamed, report.added, report.removed) == (1, 0, 0)
    images = kb.store.metadatas(IMAGE)
    texts = kb.store.metadatas(TEXT)
    assert len(images) == 2
    assert all("/new/" in str(m["source"]) for m in (*images.values(), *texts.values()))
    parents = {str(m["parent_id"]) for m in texts.values() if m.get("parent_id")}
    assert parents == set(images)  # the children point at the moved figures
    assert {str(m["text_id"]) for m in images.values()} <= set(texts)


def test_a_changed_pdf_leaves_no_stale_records(tmp_path: Path, tiny_clip: ClipModel) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "paper.pdf", PAGES)
    kb = _kb(tmp_path, tiny_clip)
    kb.sync(folder)
    write_pdf(folder / "paper.pdf", PAGES[:1])
    report = kb.sync(folder)
    assert report.updated == 1
    assert len(_by_source(kb)["paper.pdf"]) == 1 + 1 + 1
    kb.remove([folder / "paper.pdf"])
    assert _by_source(kb) == {}  # children go with their file


def test_turning_ocr_on_reads_what_was_indexed_without_it(tmp_path: Path, tiny_clip: ClipModel) -> None:
    fonts = fonts_present(EN_FONTS)
    if not fonts:
        pytest.skip("no fonts")
    folder = tmp_path / "images"
    folder.mkdir()
    render(["walrus", "compass", "saffron"], fonts[0], 36, noise=0).image.save(folder / "sign.png")
    kb = _kb(tmp_path, tiny_clip, ocr="off")
    assert kb.sync(folder).ocr_images == 0
    kb.pictures = PictureOptions(ocr="auto")
    report = kb.sync(folder)
    if report.ocr.startswith("off"):
        pytest.skip(report.ocr)
    assert (report.updated, report.ocr_images) == (1, 1)
    children = [m for m in kb.store.metadatas(TEXT).values() if m.get("kind") == "ocr"]
    assert len(children) == 1
    assert kb.sync(folder).unchanged == 1  # read once, not on every sync
