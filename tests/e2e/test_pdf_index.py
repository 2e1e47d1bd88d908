"""Indexing documents with pictures through the CLI: PDF pages, figures and scans, OCR, status, bad PDFs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.kb.records import FIGURE, IMAGE, PAGE, TEXT
from tests.support.ocr_images import EN_FONTS, fonts_present, render
from tests.support.pdfs import PageSpec, bomb_figure_pdf, declared_pages_pdf, write_pdf

PAGES = [
    PageSpec(["Espresso has crema on top. The barista tamps the coffee."], [("A red bar chart of sales", "red")]),
    PageSpec(["Second page about green tea leaves."], [("Blue chart of rainfall", "blue"), ("Tides", "green")]),
    PageSpec(scan=["harbour", "lantern", "velvet", "quarry"]),
    PageSpec(["Fourth page about sourdough bread."]),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    f = tmp_path / "docs"
    f.mkdir()
    write_pdf(f / "paper.pdf", PAGES)
    write_pdf(f / "secret.pdf", [PageSpec(["Secret"])], encrypt="pw")
    (f / "broken.pdf").write_bytes(b"%PDF-1.4\nnot a pdf")
    (f / "huge.pdf").write_bytes(declared_pages_pdf(100_000))
    (f / "bomb.pdf").write_bytes(bomb_figure_pdf(60_000))
    render(["walrus", "compass", "saffron", "tundra"], fonts_present(EN_FONTS)[0], 32).image.save(f / "sign.png")
    (f / "note.txt").write_text("A plain note about cats.", encoding="utf-8")
    return f


def test_index_pdf_figures_pages_and_ocr(mmrag_cli, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "kb")
    report = mmrag_cli("index", str(folder), "--db", db, "--model", "toy", "--ocr", "--json").json()
    skipped = {Path(s["source"]).name: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"secret.pdf", "broken.pdf", "huge.pdf"}  # each skipped and reported
    assert "encrypted" in skipped["secret.pdf"]
    assert "100000 pages" in skipped["huge.pdf"]
    assert report["added"] == 4  # paper.pdf, bomb.pdf (its text), sign.png, note.txt: neighbours kept
    assert [Path(s["source"].split(" (")[0]).name for s in report["parts_skipped"]] == ["bomb.pdf"]
    assert report["figures"] == 3
    assert report["pages"] == 1
    if report["ocr"].startswith("off"):
        pytest.skip(report["ocr"])
    assert report["ocr_pages"] == 1
    assert report["ocr_images"] >= 1

    from mmrag.factory import open_knowledge_base

    kb = open_knowledge_base(db=db, create=False)
    images = kb.store.metadatas(IMAGE)
    texts = kb.store.metadatas(TEXT)
    paper = str(folder / "paper.pdf")
    figures = sorted((m["page"], m["figure"]) for m in images.values() if m.get("kind") == FIGURE)
    assert figures == [(0, 0), (1, 0), (1, 1)]  # N figures, N image documents, right pages
    assert [m["page"] for m in images.values() if m.get("kind") == PAGE] == [2]
    chunks = {int(m["page"]): d for m, d in _chunks(kb, paper)}
    assert sorted(chunks) == [0, 1, 3]  # text chunks carry the right page (the scan has no text layer)
    assert "crema" in chunks[0]
    assert "green tea" in chunks[1]
    assert "sourdough" in chunks[3]
    ocr_parents = {m["parent_id"] for m in texts.values() if m.get("kind") == "ocr"}
    assert any(p.endswith("-p00002") for p in ocr_parents)  # the scanned page was read

    hits = kb.searcher.search("harbour lantern velvet quarry", k=3, threshold=0.0).hits
    assert any(h.id.endswith("-p00002") and h.metadata.get("page") == 2 for h in hits[:3])
    page_hit = next(h for h in hits if h.id.endswith("-p00002"))
    assert "harbour" in str(page_hit.metadata.get("matched", "")).lower()
    assert len({h.id for h in hits}) == len(hits)  # each parent once

    status = mmrag_cli("status", "--db", db, "--json").json()
    assert status["pdf_figures"] == 3
    assert status["pdf_pages"] == 1
    assert status["ocr_images"] >= 2

    again = mmrag_cli("index", str(folder), "--db", db, "--ocr", "--json").json()
    assert again["unchanged"] == 4
    assert again["ocr_images"] == 0
    assert again["ocr_pages"] == 0


def _chunks(kb, source: str) -> list[tuple[dict, str]]:  # type: ignore[no-untyped-def]
    records = kb.store.get(TEXT, [i for i, m in kb.store.metadatas(TEXT).items() if m["source"] == source])
    return [(r.metadata, r.document) for r in records if not r.metadata.get("parent_id")]


def test_no_ocr_flag_turns_it_off(mmrag_cli, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = mmrag_cli("index", str(folder), "--db", str(tmp_path / "kb"), "--model", "toy", "--no-ocr", "--json")
    data = report.json()
    assert data["ocr"].startswith("off")
    assert data["ocr_images"] == 0
    assert data["figures"] == 3
