"""OCR (mmrag/files/ocr.py) with the real engines: word recall on generated images, budgets, messages."""

from __future__ import annotations

import statistics

import pytest
from PIL import Image

from mmrag.errors import ConfigError, OcrTimeoutError, OcrUnavailableError
from mmrag.files.ocr import RapidOcrEngine, TesseractEngine, ocr_engine, run_ocr, tidy
from tests.support.ocr_images import samples, word_recall


def _engine(name: str) -> object:
    try:
        return ocr_engine(name)
    except OcrUnavailableError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize(("language", "floor"), [("en", 0.90), ("zh", 0.80)])
def test_rapidocr_word_recall(language: str, floor: float) -> None:
    engine = _engine("rapidocr")
    found = [
        word_recall(s.words, run_ocr(engine, s.image, budget_s=60).text)  # type: ignore[arg-type]
        for s in samples(language, 4, seed=11)
    ]
    assert statistics.mean(found) >= floor, found


def test_tesseract_reads_english() -> None:
    engine = _engine("tesseract")
    found = [
        word_recall(s.words, run_ocr(engine, s.image, budget_s=60).text)  # type: ignore[arg-type]
        for s in samples("en", 3, seed=11)
    ]
    assert statistics.mean(found) >= 0.90, found


def test_ocr_past_its_budget_is_a_typed_error() -> None:
    engine = _engine("tesseract")
    image = samples("en", 1, seed=3, words_each=40)[0].image
    with pytest.raises(OcrTimeoutError, match=r"sign\.png.*budget.*MMRAG_OCR_BUDGET_S"):
        run_ocr(engine, image, budget_s=0.01, name="sign.png")  # type: ignore[arg-type]


def test_tiny_images_are_not_read() -> None:
    engine = RapidOcrEngine()
    assert run_ocr(engine, Image.new("RGB", (64, 64), "white"), budget_s=1).text == ""


def test_a_missing_language_says_how_to_install_it() -> None:
    with pytest.raises(OcrUnavailableError, match=r"tesseract-ocr-klingon|tesseract program"):
        TesseractEngine("eng+klingon").check()


def test_bad_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="MMRAG_OCR_ENGINE"):
        ocr_engine("abbyy")
    with pytest.raises(ConfigError, match="MMRAG_OCR_LANGUAGES"):
        ocr_engine("tesseract", "eng chi")


def test_tidy_joins_chinese_characters_and_drops_shapes() -> None:
    assert tidy("图 书 馆\n\n  coffee   shop \n■\n★ *") == "图书馆\ncoffee shop"


def test_drawn_shapes_give_no_text() -> None:
    import random

    from mmrag.toy.shapes import CLASSES, draw

    engine = _engine("rapidocr")
    rng = random.Random(0)
    texts = [run_ocr(engine, draw(c, rng, size=128), budget_s=30).text for c in CLASSES[:8]]  # type: ignore[arg-type]
    assert texts == [""] * 8


def test_a_tall_page_is_read_band_by_band_each_line_once() -> None:
    """A page taller than one detection band: every line is read, none twice, including lines on band edges."""
    from PIL import ImageDraw, ImageFont

    from tests.support.ocr_images import EN_FONTS, fonts_present

    engine = _engine("rapidocr")
    font = ImageFont.truetype(fonts_present(EN_FONTS)[0], 56)
    words = ["harbour", "lantern", "velvet", "quarry", "walrus", "compass", "saffron", "tundra", "meadow", "pebble"]
    page = Image.new("RGB", (1400, 2600), "white")  # at the detection scale 960 x 1783: four bands
    draw = ImageDraw.Draw(page)
    for i, word in enumerate(words):  # down the whole page: several lie in two bands' overlap
        draw.text((120, 80 + i * 250), f"{word} line", fill="black", font=font)
    text = run_ocr(engine, page, budget_s=120).text.lower()  # type: ignore[arg-type]
    for word in words:
        assert text.count(word) == 1, (word, text)


def test_a_long_receipt_keeps_its_resolution() -> None:
    """A narrow, very tall image is read band by band at its own width. (In one pass, the engine scaled it to a
    960 px long side and then up to a 480 px short side, 480 x 3600: ~480 MB for a blank receipt.)"""
    from PIL import ImageDraw, ImageFont

    from tests.support.ocr_images import EN_FONTS, fonts_present

    engine = _engine("rapidocr")
    font = ImageFont.truetype(fonts_present(EN_FONTS)[0], 36)
    words = ["coffee", "bagel", "butter", "honey", "orange", "muffin", "tea", "total"]
    receipt = Image.new("RGB", (400, 3000), "white")
    draw = ImageDraw.Draw(receipt)
    for i, word in enumerate(words):
        draw.text((40, 100 + i * 350), f"{word} 4.50", fill="black", font=font)
    text = run_ocr(engine, receipt, budget_s=120).text.lower()  # type: ignore[arg-type]
    assert [w for w in words if w in text] == words, text
