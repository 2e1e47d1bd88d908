"""The UI shows a PDF's page image and a picture found by the text inside it: page and matched text, in the
grid and when enlarged (AppTest on a knowledge base indexed by the real CLI with real OCR)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.cli import MmragCli
from tests.support.ocr_images import EN_FONTS, fonts_present, render
from tests.support.pdfs import PageSpec, write_pdf
from tests.support.ui import started_app

PAGES = [
    PageSpec(["Espresso has crema on top. The barista tamps the coffee."]),
    PageSpec(scan=["harbour", "lantern", "velvet", "quarry"]),
]


@pytest.fixture(scope="module")
def pictures_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("ui-pictures")
    folder = base / "docs"
    folder.mkdir()
    write_pdf(folder / "paper.pdf", PAGES)
    render(["walrus", "compass", "saffron"], fonts_present(EN_FONTS)[0], 32).image.save(folder / "sign.png")
    db = base / "kb"
    report = MmragCli(base / "home")("index", str(folder), "--db", str(db), "--model", "toy", "--ocr", "--json")
    assert report.json()["ocr_pages"] == 1, report.stdout
    return db


@pytest.fixture
def app(pictures_db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return started_app(pictures_db, monkeypatch)


def grid_captions(at: AppTest) -> list[str]:
    return [str(c.value) for c in at.caption if "**[" in str(c.value)]


def test_a_scanned_page_shows_its_page_and_the_text_that_matched(app: AppTest) -> None:
    app.chat_input[0].set_value("harbour lantern").run()
    assert not app.exception, app.exception
    [page] = [c for c in grid_captions(app) if "page 2" in c]  # the scan is the PDF's second page
    assert "harbour" in page.lower()  # the OCR text that matched, beside the image
    position = grid_captions(app).index(page)
    shown = len(app.image)
    app.button(key=f"h1-{position}").click().run()  # Enlarge
    assert not app.exception, app.exception
    [facts] = [str(c.value) for c in app.caption if str(c.value).startswith("Source: ")]
    assert "paper.pdf`, page 2" in facts
    assert "Text in the image: " in facts
    assert "lantern" in facts.lower()
    assert not app.warning  # a page has no file of its own, and that is not "gone"
    assert len(app.image) == shown + 1  # its stored image, in the dialog


def test_a_picture_found_by_its_text_shows_the_matched_text(app: AppTest) -> None:
    app.chat_input[0].set_value("walrus compass").run()
    assert not app.exception, app.exception
    captions = grid_captions(app)
    assert captions, "no image shown"
    assert "sign.png" in captions[0] or "walrus" in captions[0].lower()
    assert "walrus" in captions[0].lower()
    app.button(key="h1-0").click().run()
    [facts] = [str(c.value) for c in app.caption if str(c.value).startswith("Source: ")]
    assert facts.split("`")[1].endswith("sign.png")
    assert "page" not in facts.split("`")[2]  # a plain image has no page
    assert "Text in the image: " in facts
