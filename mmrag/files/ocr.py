"""Text inside images (OCR), with a time budget per image.

Two real engines, chosen by name (``ocr_engine``, env ``MMRAG_OCR_ENGINE``):

* ``rapidocr`` (the default, see below) and
* ``tesseract``: Google's Tesseract 5 through `pytesseract`_, run as a child process that is
  killed once it passes the budget. Languages are Tesseract's traineddata names joined by ``+``
  (``eng+chi_sim``, the default); each needs its data installed (Debian: ``apt-get install tesseract-ocr
  tesseract-ocr-chi-sim``; another language ``xxx`` is ``tesseract-ocr-xxx``, with ``_`` written ``-``).
* ``rapidocr``: `RapidOCR`_ (PaddleOCR's PP-OCR models on ONNX Runtime, shipped in the
  ``rapidocr-onnxruntime`` wheel). Its models read Chinese and English whatever ``languages`` says. It runs
  in this process: the budget is checked between text lines, and the image's OCR is dropped once past it.

RapidOCR is the default because it reads Chinese far better (word recall 1.00 against Tesseract's 0.53 on
``bench/ocr_quality.py``'s images; English 0.92 against 0.97); ``docs/pdf-ocr.md`` has the measurements.
Engines are built lazily: constructing one imports nothing; :func:`ocr_engine` says, with a clear message,
when an engine or a language is missing.

.. _pytesseract: https://github.com/madmaze/pytesseract
.. _RapidOCR: https://github.com/RapidAI/RapidOCR
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image, ImageOps

from mmrag.errors import ConfigError, OcrError, OcrTimeoutError, OcrUnavailableError
from mmrag.files.memory import release_freed_memory

ENGINES = ("rapidocr", "tesseract")
DEFAULT_ENGINE = "rapidocr"
DEFAULT_LANGUAGES = "eng+chi_sim"
DEFAULT_BUDGET_S = 30.0
MIN_OCR_SIDE = 32
MIN_OCR_LONG_SIDE = 128
"""Images with a shorter side below ``MIN_OCR_SIDE`` or a longer side below this (thumbnails, icons) are not
OCR'd: no phrase is readable there, and skipping them keeps indexing small images fast."""
MAX_OCR_SIDE = 4000
"""Larger images are scaled down to this longer side first (the time an engine takes grows with the pixels)."""
RAPID_DET_SIDE = 480
"""RapidOCR looks for text lines on images scaled up to at least this short side (its default, 736, costs a
second even on an empty thumbnail)."""
RAPID_DET_MAX_SIDE = 960
"""... and scaled down to at most this wide (PaddleOCR's own default side), then read in bands (below). RapidOCR's
own default, the whole image scaled to a 2000 px long side, cost ~600 MB of memory on one rendered page, and a
long receipt scaled down and then up again to a 480 px short side (~480 MB). Lines are still read from the
full-size pixels."""
RAPID_DET_BAND = 512
"""Text lines are looked for in horizontal bands this tall (at the scale above), one after another: a whole
page at once cost ~230 MB of memory, band by band it costs ~40 MB."""
RAPID_DET_OVERLAP = 96
"""Bands overlap by this much (pixels at that scale), more than a text line is tall, so each line lies whole in
one band; a line found in two bands is kept once."""
MIN_LINE_SCORE = 0.6
"""RapidOCR lines recognised with less confidence are dropped (they are mostly shapes and texture)."""
SMALL_LINE = 40
"""RapidOCR reads text lines less tall than this (pixels) at twice their size."""
MIN_TEXT_HEIGHT = 32
"""Images smaller than this tall are scaled up before Tesseract reads them (it needs ~20 px letters)."""

_LANGUAGE = re.compile(r"^[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*$")
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]) +(?=[{_CJK}])")


@dataclass(frozen=True)
class OcrResult:
    """The text read from one image, the engine that read it, and how long it took (seconds)."""

    text: str
    engine: str
    seconds: float
    read: bool = True
    """False when the image was too small to hold text and was not given to the engine."""


class OcrEngine(Protocol):
    """Reads the text in an image within a time budget."""

    name: str
    languages: str

    def read(self, image: Image.Image, *, budget_s: float) -> str:
        """The image's text (lines joined by newlines; "" when it shows none).

        Raises:
            OcrTimeoutError: past ``budget_s`` seconds.
            OcrError: the engine failed on this image.
        """
        ...


def check_languages(languages: str) -> str:
    """``languages`` as given, or a :class:`ConfigError` naming the setting when it isn't ``xxx+yyy``."""
    if not _LANGUAGE.match(languages):
        msg = (
            f"OCR languages must be Tesseract names joined by '+', like eng+chi_sim; got {languages!r} "
            "(flag --ocr-languages, env MMRAG_OCR_LANGUAGES)"
        )
        raise ConfigError(msg)
    return languages


def ocr_engine(name: str = DEFAULT_ENGINE, languages: str = DEFAULT_LANGUAGES) -> OcrEngine:
    """The engine called ``name``, checked to be installed with its languages.

    Raises:
        ConfigError: an unknown engine or malformed languages.
        OcrUnavailableError: the engine, or one of the languages, is not installed (the message says how).
    """
    check_languages(languages)
    if name == "tesseract":
        tesseract = TesseractEngine(languages)
        tesseract.check()
        return tesseract
    if name == "rapidocr":
        rapid = RapidOcrEngine(languages)
        rapid.check()
        return rapid
    msg = f"unknown OCR engine {name!r}; choose one of {', '.join(ENGINES)} (flag --ocr-engine, env MMRAG_OCR_ENGINE)"
    raise ConfigError(msg)


def run_ocr(engine: OcrEngine, image: Image.Image, *, budget_s: float, name: str = "") -> OcrResult:
    """OCR one image: too small ones give "" at once, large ones are scaled down first.

    Args:
        name: the image's file (and page), for messages.

    Raises:
        OcrTimeoutError: past ``budget_s``.
        OcrError: the engine failed on it.
    """
    start = time.perf_counter()
    if min(image.size) < MIN_OCR_SIDE or max(image.size) < MIN_OCR_LONG_SIDE:
        return OcrResult("", engine.name, 0.0, read=False)
    prepared = _prepared(image)
    try:
        text = engine.read(prepared, budget_s=budget_s)
    except OcrTimeoutError as e:
        msg = (
            f"{name or 'image'}: OCR ran past its budget of {budget_s:g} s and was stopped; the image is indexed "
            "without its text (raise ocr_budget_s, env MMRAG_OCR_BUDGET_S, to give it more time)"
        )
        raise OcrTimeoutError(msg, name) from e
    except OcrError as e:
        msg = f"{name or 'image'}: OCR failed ({e}); the image is indexed without its text"
        raise OcrError(msg, name) from e
    finally:
        release_freed_memory()  # a page's detection pass frees ~250 MB that glibc would otherwise keep
    return OcrResult(tidy(text), engine.name, time.perf_counter() - start)


def tidy(text: str) -> str:
    """Engine output as plain lines: spaces between Chinese characters dropped, runs of space made one, and lines
    without words (blank, or a shape read as a symbol) gone."""
    lines = []
    for line in text.splitlines():
        line = _CJK_GAP.sub("", " ".join(line.split()))
        if _is_text(line):
            lines.append(line)
    return "\n".join(lines)


def _is_text(line: str) -> bool:
    """A line with words in it: two letters or digits, or a Chinese character (not a shape read as ■ or ★)."""
    return sum(ch.isalnum() for ch in line) >= 2 or bool(_CJK_CHAR.search(line))


def _prepared(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image) if image.mode != "RGB" else image
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    longest = max(image.size)
    if longest > MAX_OCR_SIDE:
        scale = MAX_OCR_SIDE / longest
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    return image


# --- Tesseract ---------------------------------------------------------------------------------


class TesseractEngine:
    """Tesseract 5 through pytesseract: a child process per image, killed past the budget.

    Args:
        languages: traineddata names joined by ``+`` (``eng+chi_sim``).
        psm: Tesseract's page segmentation mode (3: automatic, for pages and photos alike).
    """

    name = "tesseract"

    def __init__(self, languages: str = DEFAULT_LANGUAGES, *, psm: int = 3) -> None:
        self.languages = check_languages(languages)
        self.psm = psm

    def check(self) -> None:
        """Raise :class:`OcrUnavailableError` when pytesseract, the program or a language is missing."""
        try:
            import pytesseract
        except ImportError as e:
            msg = "OCR with tesseract needs pytesseract: pip install 'mmrag[ocr]' (or pass --no-ocr)"
            raise OcrUnavailableError(msg) from e
        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            msg = (
                "OCR with tesseract needs the tesseract program: apt-get install tesseract-ocr tesseract-ocr-chi-sim "
                "(macOS: brew install tesseract tesseract-lang), or pass --no-ocr"
            )
            raise OcrUnavailableError(msg)
        try:
            installed = set(pytesseract.get_languages(config=""))
        except (OSError, RuntimeError, pytesseract.TesseractError) as e:
            msg = f"tesseract is installed but does not run ({e}); reinstall it or pass --no-ocr"
            raise OcrUnavailableError(msg) from e
        missing = [lang for lang in self.languages.split("+") if lang not in installed]
        if missing:
            packages = " ".join(f"tesseract-ocr-{lang.replace('_', '-').lower()}" for lang in missing)
            msg = (
                f"tesseract has no data for OCR language(s) {', '.join(missing)} (installed: "
                f"{', '.join(sorted(installed)) or 'none'}); install them (Debian: apt-get install {packages}) "
                "or choose others (flag --ocr-languages, env MMRAG_OCR_LANGUAGES)"
            )
            raise OcrUnavailableError(msg)

    def read(self, image: Image.Image, *, budget_s: float) -> str:
        import pytesseract

        gray = image.convert("L")
        if gray.height < MIN_TEXT_HEIGHT * 2:
            factor = 2
            gray = gray.resize((gray.width * factor, gray.height * factor), Image.Resampling.LANCZOS)
        try:
            return str(
                pytesseract.image_to_string(gray, lang=self.languages, config=f"--psm {self.psm}", timeout=budget_s)
            )
        except RuntimeError as e:
            if "timeout" in str(e).lower():
                msg = f"tesseract passed {budget_s:g} s"
                raise OcrTimeoutError(msg) from e
            raise OcrError(str(e)) from e
        except (OSError, pytesseract.TesseractError) as e:
            raise OcrError(str(e)) from e


# --- RapidOCR ----------------------------------------------------------------------------------


class RapidOcrEngine:
    """RapidOCR (PP-OCR models on ONNX Runtime, in the wheel): detection, then recognition line by line.

    The model loads on first use, once per engine, under a lock. ``languages`` is kept for the record only:
    the shipped models read Chinese and English.
    """

    name = "rapidocr"

    def __init__(self, languages: str = DEFAULT_LANGUAGES) -> None:
        self.languages = check_languages(languages)
        self._engine: Any = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise :class:`OcrUnavailableError` when the ``rapidocr-onnxruntime`` package is missing."""
        try:
            import rapidocr_onnxruntime  # noqa: F401
        except ImportError as e:
            msg = "OCR with rapidocr needs its package: pip install rapidocr-onnxruntime (or pass --no-ocr)"
            raise OcrUnavailableError(msg) from e

    def _loaded(self) -> Any:
        with self._lock:
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR

                # Detection at the image's own size (capped): the default scales every image up to 736 px first,
                # which costs a second even on an empty thumbnail.
                self._engine = RapidOCR(
                    det_limit_side_len=RAPID_DET_SIDE, det_limit_type="min", max_side_len=RAPID_DET_MAX_SIDE
                )
            return self._engine

    def read(self, image: Image.Image, *, budget_s: float) -> str:
        import numpy as np

        engine = self._loaded()
        start = time.perf_counter()
        pixels = np.asarray(image.convert("RGB"))[:, :, ::-1].copy()  # BGR, as OpenCV reads files
        lines: list[str] = []
        try:
            boxes = _detect_in_bands(engine, pixels, start + budget_s, budget_s)
            for box in sorted(boxes, key=lambda b: (min(p[1] for p in b), min(p[0] for p in b))):
                if time.perf_counter() - start > budget_s:
                    raise _past(budget_s)
                crop = _line_crop(pixels, box)
                if crop is None:
                    continue
                found, _ = engine(crop, use_det=False, use_cls=False, use_rec=True)
                lines.extend(str(item[0]).strip() for item in found or [] if float(item[1]) >= MIN_LINE_SCORE)
        except OcrError:
            raise
        except Exception as e:  # an engine's own failure, whatever its type, is this image's
            raise OcrError(str(e)) from e
        return "\n".join(lines)


def _past(budget_s: float) -> OcrTimeoutError:
    return OcrTimeoutError(f"rapidocr passed {budget_s:g} s")


def _detect_in_bands(engine: Any, pixels: Any, deadline: float, budget_s: float) -> list[Any]:
    """The text lines' boxes (in ``pixels``' coordinates), found on a copy at most :data:`RAPID_DET_MAX_SIDE`
    wide: in one pass when that copy is at most one band tall, else band by band, every band
    :data:`RAPID_DET_BAND` tall and evenly spaced from top to bottom. A tall page or a long receipt thus keeps
    its resolution, and no pass holds more than one band's feature maps.

    Each band keeps the lines whose centre lies in its own part, split from its neighbours' at the middle of
    their overlap; these parts tile the image, so a line is kept once, from a band that holds it whole.
    """
    import cv2

    height, width = pixels.shape[:2]
    scale = min(1.0, RAPID_DET_MAX_SIDE / width)
    scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scaled[1] <= RAPID_DET_BAND:
        boxes, _ = engine(pixels, use_rec=False)
        return list(boxes or [])
    small = pixels if scale == 1.0 else cv2.resize(pixels, scaled, interpolation=cv2.INTER_AREA)
    span = scaled[1] - RAPID_DET_BAND
    bands = math.ceil(span / (RAPID_DET_BAND - RAPID_DET_OVERLAP)) + 1  # evenly spaced: overlaps of at least that
    tops = [round(i * span / (bands - 1)) for i in range(bands)]
    edges = [0.0, *((a + RAPID_DET_BAND + b) / 2 for a, b in itertools.pairwise(tops)), float(scaled[1])]
    found: list[Any] = []
    for i, top in enumerate(tops):
        if time.perf_counter() > deadline:
            raise _past(budget_s)
        boxes, _ = engine(small[top : top + RAPID_DET_BAND], use_rec=False)
        for box in boxes or []:
            centre = top + sum(p[1] for p in box) / len(box)
            if edges[i] <= centre < edges[i + 1]:
                found.append([[x / scale, (y + top) / scale] for x, y in box])
    return found


def _line_crop(pixels: Any, box: Any) -> Any:
    """A text line's upright rectangle with a 2-pixel margin, doubled when small (or None when empty).

    Upright crops keep the spaces between English words, which the engine's own tight, rotated crops lose
    (measured: word recall 0.92 against 0.21 on the bench's images).
    """
    xs = [p[0] for p in box]
    ys = [p[1] for p in box]
    height, width = pixels.shape[:2]
    left, right = max(0, int(min(xs)) - 2), min(width, int(max(xs)) + 3)
    top, bottom = max(0, int(min(ys)) - 2), min(height, int(max(ys)) + 3)
    if right - left < 4 or bottom - top < 4:
        return None
    crop = pixels[top:bottom, left:right]
    if crop.shape[0] < SMALL_LINE:
        import cv2

        crop = cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    return crop
