"""Word and PowerPoint files: text (slides as pages), pictures as figures with captions, bad files skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from mmrag.errors import OfficeError
from mmrag.files.documents import read_text
from mmrag.files.office import read_office
from mmrag.kb.records import FIGURE, IMAGE, TEXT, citation, is_child
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.kbs import open_kb
from tests.support.office import OLE_MAGIC, Picture, Slide, bomb_png, write_docx, write_pptx, zip_bomb_docx
from tests.support.pdfs import figure_image


def report_docx(path: Path) -> Path:
    return write_docx(
        path,
        ["Quarterly report on espresso sales.", "The barista tamps the coffee before brewing."],
        [
            Picture(figure_image("red"), caption="Figure 1: A red bar chart of sales"),
            Picture(figure_image("blue"), alt="Blue chart of rainfall"),
            Picture(Image.new("RGB", (16, 16), "green")),  # an icon: not a figure
        ],
        table=[["Region", "Sales"], ["North", "42"]],
    )


def deck_pptx(path: Path) -> Path:
    return write_pptx(
        path,
        [
            Slide("Welcome", "Sourdough bread needs a starter.", notes="Speaker notes about rye flour."),
            Slide("Charts", "Green tea leaves", pictures=[Picture(figure_image("red"), alt="A red bar chart")]),
            Slide("Grouped", pictures=[Picture(figure_image("blue")), Picture(figure_image("green"))], grouped=True),
        ],
    )


def test_a_word_file_gives_its_text_tables_and_captioned_figures(tmp_path: Path) -> None:
    doc = read_office(report_docx(tmp_path / "report.docx"))
    assert not doc.paged
    [part] = doc.parts
    assert "espresso sales" in part.text
    assert "Region | Sales" in part.text
    assert [f.caption for f in doc.figures] == ["Figure 1: A red bar chart of sales", "Blue chart of rainfall"]
    assert all(f.image.size == (320, 200) for f in doc.figures)
    assert not doc.problems
    assert "barista" in read_text(tmp_path / "report.docx")


def test_a_deck_gives_one_part_per_slide_with_notes_and_pictures_in_groups(tmp_path: Path) -> None:
    doc = read_office(deck_pptx(tmp_path / "deck.pptx"))
    assert doc.paged
    assert [p.page for p in doc.parts] == [0, 1, 2]
    assert "rye flour" in doc.parts[0].text
    assert "Green tea" in doc.parts[1].text
    assert [(f.page, f.index, f.caption) for f in doc.figures] == [
        (1, 0, "A red bar chart"),
        (2, 0, "Grouped"),  # no alt text: the slide's title
        (2, 1, "Grouped"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("locked.docx", OLE_MAGIC + b"\x00" * 512, "encrypted"),
        ("garbage.pptx", b"PK\x03\x04 not really a zip", "not a readable"),
        ("empty.docx", b"", "not a readable"),
    ],
)
def test_bad_office_files_are_typed_errors(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(OfficeError, match=reason):
        read_office(path)


def test_a_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    with pytest.raises(OfficeError, match="inflate"):
        read_office(zip_bomb_docx(tmp_path / "bomb.docx"))


def test_a_picture_that_is_a_decompression_bomb_is_a_problem_beside_the_rest(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "x.docx", ["Text stays."], [Picture(bomb_png()), Picture(figure_image("red"))])
    doc = read_office(path)
    assert len(doc.figures) == 1
    [problem] = doc.problems
    assert "megapixels" in problem.reason


@pytest.fixture
def office_kb(tmp_path: Path, tiny_model_id: str) -> tuple[KnowledgeBase, Path]:
    folder = tmp_path / "docs"
    folder.mkdir()
    report_docx(folder / "report.docx")
    deck_pptx(folder / "deck.pptx")
    (folder / "locked.docx").write_bytes(OLE_MAGIC + b"\x00" * 512)
    write_docx(folder / "bomb.docx", ["A bomb inside."], [Picture(bomb_png())])
    (folder / "note.md").write_text("A plain note.", encoding="utf-8")
    kb = open_kb(tmp_path / "kb", tiny_model_id)
    report = kb.sync(folder)
    skipped = {Path(s.source).name: s.reason for s in report.skipped}
    assert "encrypted" in skipped.pop("locked.docx")
    assert not skipped
    assert [Path(p.source.split(" (")[0]).name for p in report.parts_skipped] == ["bomb.docx"]  # its picture
    return kb, folder


def test_indexing_stores_chunks_with_slides_and_figures_and_skips_the_bad(
    office_kb: tuple[KnowledgeBase, Path],
) -> None:
    kb, folder = office_kb
    texts = kb.store.metadatas(TEXT)
    images = kb.store.metadatas(IMAGE)
    sources = {Path(str(m["source"])).name for m in texts.values() if not is_child(m)}
    assert sources == {"report.docx", "deck.pptx", "bomb.docx", "note.md"}  # locked.docx skipped, neighbours kept
    deck_chunks = [m for m in texts.values() if str(m["source"]).endswith("deck.pptx") and not is_child(m)]
    assert sorted(int(m["page"]) for m in deck_chunks) == [0, 1, 2]
    assert citation(str(folder / "deck.pptx"), {"page": 1}) == "deck.pptx, slide 2"
    word_chunks = [m for m in texts.values() if str(m["source"]).endswith("report.docx") and not is_child(m)]
    assert word_chunks
    assert all("page" not in m for m in word_chunks)  # a Word file has no pages to cite
    figures = sorted(
        (Path(str(m["source"])).name, m.get("page", -1), str(m["caption"]))
        for m in images.values()
        if m.get("kind") == FIGURE
    )
    assert figures == [
        ("deck.pptx", 1, "A red bar chart"),
        ("deck.pptx", 2, "Grouped"),  # no alt text: the slide's title
        ("deck.pptx", 2, "Grouped"),
        ("report.docx", -1, "Blue chart of rainfall"),  # a Word figure has no page
        ("report.docx", -1, "Figure 1: A red bar chart of sales"),
    ]
    kb.sync(folder)  # a rerun changes nothing
    assert kb.store.metadatas(IMAGE).keys() == images.keys()
    assert kb.store.metadatas(TEXT).keys() == texts.keys()


def test_a_phrase_on_a_slide_finds_it_and_the_answer_cites_the_slide(office_kb: tuple[KnowledgeBase, Path]) -> None:
    from mmrag.langchain.answer import answer_question

    kb, _ = office_kb
    [hit, *_] = kb.searcher.search("sourdough starter", modality=TEXT, k=3).hits
    assert Path(hit.source).name == "deck.pptx"
    assert hit.metadata["page"] == 0
    answer = answer_question(kb, "sourdough starter", None, k=3)
    assert any(s.where.endswith("deck.pptx, slide 1") for s in answer.sources)
    assert "deck.pptx, slide 1" in answer.answer


def test_a_picture_inside_a_word_table_is_a_figure_too(tmp_path: Path) -> None:
    import docx
    from docx.shared import Inches

    from tests.support.office import png

    document = docx.Document()
    document.add_paragraph("A table with a chart in it.")
    cell = document.add_table(rows=1, cols=2).cell(0, 1)
    cell.paragraphs[0].add_run().add_picture(png(figure_image("red")), width=Inches(2))
    cell.add_paragraph("Figure 7: The chart in the table")
    document.save(str(tmp_path / "t.docx"))
    [figure] = read_office(tmp_path / "t.docx").figures
    assert figure.caption == "Figure 7: The chart in the table"
