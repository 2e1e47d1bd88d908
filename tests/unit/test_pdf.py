"""PDFs as text and pictures (mmrag/files/pdf.py): pages, figures with captions, scans, and bad PDFs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.errors import PdfError
from mmrag.files.pdf import PdfFigure, PdfFile, PdfLimits, PdfProblem
from mmrag.kb.records import citation
from tests.support.pdfs import PageSpec, bomb_figure_pdf, declared_pages_pdf, write_pdf

PAGES = [
    PageSpec(["Espresso has crema on top. The barista tamps the coffee."], [("A red bar chart of sales", "red")]),
    PageSpec(["Second page about green tea leaves."], [("Blue chart of rainfall", "blue"), ("Tides", "green")]),
    PageSpec(scan=["harbour", "lantern", "velvet", "quarry"]),
    PageSpec(["Fourth page: no pictures, only words about sourdough bread."]),
]


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pdf(tmp_path_factory.mktemp("pdf") / "paper.pdf", PAGES)


def test_pages_are_numbered_like_langchain(paper: Path) -> None:
    with PdfFile(paper) as pdf:
        pages = pdf.pages()
    assert [p.page for p in pages] == [0, 1, 2, 3]  # 0-based, as LangChain's PDF loaders
    assert [p.label for p in pages] == ["1", "2", "3", "4"]
    assert "crema" in pages[0].text
    assert "green tea" in pages[1].text
    assert "sourdough" in pages[3].text
    assert [p.scanned for p in pages] == [False, False, True, False]


def test_n_figures_give_n_figures_with_their_pages_and_captions(paper: Path) -> None:
    with PdfFile(paper) as pdf:
        items = list(pdf.figures(pdf.pages()))
    figures = [f for f in items if isinstance(f, PdfFigure)]
    assert not [p for p in items if isinstance(p, PdfProblem)]
    assert [(f.page, f.index) for f in figures] == [(0, 0), (1, 0), (1, 1)]
    assert [f.caption for f in figures] == [
        "Figure 1: A red bar chart of sales",
        "Figure 2: Blue chart of rainfall",
        "Figure 3: Tides",
    ]
    assert all(f.bbox is not None and f.bbox[2] > f.bbox[0] for f in figures)
    assert figures[0].image.size == (320, 200)


def test_a_scanned_page_is_rendered(paper: Path) -> None:
    with PdfFile(paper, PdfLimits(render_side=1000)) as pdf:
        image = pdf.render(2)
    assert max(image.size) == 1000


def test_small_images_are_not_figures(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "icons.pdf", [PageSpec(["Text"], [("chart", "red")])])
    with PdfFile(path, PdfLimits(min_figure_side=400)) as pdf:
        assert list(pdf.figures(pdf.pages())) == []


def test_citation_is_one_based() -> None:
    assert citation("/x/paper.pdf", {"page": 3}) == "paper.pdf, page 4"
    assert citation("/x/note.txt", {}) == "note.txt"


def test_encrypted_pdf_is_refused_by_name(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "secret.pdf", [PageSpec(["Secret"])], encrypt="pw")
    with pytest.raises(PdfError, match=r"secret\.pdf.*encrypted"):
        PdfFile(path)


def test_corrupt_pdf_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nnot really a pdf at all")
    with pytest.raises(PdfError, match=r"broken\.pdf"):
        PdfFile(path)


def test_a_pdf_declaring_100000_pages_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.pdf"
    path.write_bytes(declared_pages_pdf(100_000))
    with pytest.raises(PdfError, match=r"declares 100000 pages.*MMRAG_PDF_MAX_PAGES"):
        PdfFile(path)


def test_a_decompression_bomb_figure_is_skipped_and_the_page_kept(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pdf"
    path.write_bytes(bomb_figure_pdf(60_000))
    with PdfFile(path) as pdf:
        pages = pdf.pages()
        items = list(pdf.figures(pages))
    assert "decompression bomb" in pages[0].text
    assert len(items) == 1
    assert isinstance(items[0], PdfProblem)
    assert "60000x60000" in items[0].reason
    assert "MMRAG_MAX_MEGAPIXELS" in items[0].reason


def test_answers_and_tools_cite_the_page() -> None:
    from mmrag.langchain.answer import _source, format_sources, retrieval_only_text
    from mmrag.langchain.artifacts import hit_artifact
    from mmrag.search.hits import Hit

    meta = {"source": "/docs/paper.pdf", "page": 3, "chunk": 5}
    chunk = Hit("txt-a-00005", "text", "/docs/paper.pdf", 0.3, 2.0, 0.9, "Crema is the foam.", meta)  # type: ignore[arg-type]
    figure_meta = {"source": "/docs/paper.pdf", "page": 1, "kind": "figure", "matched": "SALES 2024"}
    figure = Hit("img-a-p00001-f000", "image", "/docs/paper.pdf", 0.3, 1.0, 0.8, "data:", figure_meta)  # type: ignore[arg-type]
    prompt = format_sources([chunk, figure])
    assert "text from paper.pdf, page 4" in prompt
    assert "image paper.pdf, page 2" in prompt
    assert "SALES 2024" in prompt
    assert "/docs/paper.pdf, page 4" in retrieval_only_text([chunk])
    assert _source(1, chunk).where == "/docs/paper.pdf, page 4"
    assert _source(2, figure).snippet == "SALES 2024"
    assert hit_artifact(chunk)["page"] == 3
    assert hit_artifact(figure)["matched"] == "SALES 2024"
