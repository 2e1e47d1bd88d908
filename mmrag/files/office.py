"""Word and PowerPoint files (``.docx``, ``.pptx``) as text and pictures: python-docx and python-pptx (MIT).

* A ``.docx`` is one part (it has no pages): its paragraphs and tables, in order. Its pictures are figures, each
  with the caption beneath it ("Figure 2: ...") or else its alt text.
* A ``.pptx`` has one part per slide (``page`` is the 0-based slide, shown as "slide 3"): the text of its shapes,
  tables and speaker notes. Its pictures (also inside groups) are figures, with their alt text or else the
  slide's title as caption.

Each picture is decoded with :func:`mmrag.files.images.load_image`, so the decompression-bomb limit holds; a
picture that fails is a :class:`~mmrag.files.pdf.PdfProblem` beside the others. An Office file is a ZIP: one
that would inflate past :data:`MAX_UNZIPPED_BYTES`, that isn't a ZIP, or that is encrypted (an OLE container) is
refused whole with an :class:`~mmrag.errors.OfficeError`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrag.errors import ImageError, OfficeError
from mmrag.files.images import DEFAULT_MAX_MEGAPIXELS, load_image
from mmrag.files.pdf import DEFAULT_MIN_FIGURE_SIDE, PdfFigure, PdfPage, PdfProblem

OFFICE_SUFFIXES = frozenset({".docx", ".pptx"})
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
"""An Office file that would inflate past this is refused (a ZIP bomb)."""
MAX_FIGURES = 500
"""Pictures read from one file."""
_CAPTION = re.compile(r"^\s*(figure|fig\.|image|picture|chart|diagram|photo|图|圖|表)\s*[\dA-Za-z.:-]*", re.IGNORECASE)
_FILE_NAME = re.compile(r"^[^/\\]*\.(png|jpe?g|gif|bmp|tiff?|emf|wmf|svg|webp)$", re.IGNORECASE)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BLIP = "{http://schemas.openxmlformats.org/drawingml/2006/main}blip"
_EMBED = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}embed"
_PARAGRAPH = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}p"
_TEXT = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}t"


def is_office(path: Path) -> bool:
    """Named like a Word or PowerPoint file (``.docx``, ``.pptx``)."""
    return path.suffix.lower() in OFFICE_SUFFIXES


def is_slides(source: str) -> bool:
    """Whether ``source`` is a slide deck, whose ``page`` is a slide."""
    return source.lower().endswith(".pptx")


@dataclass(frozen=True)
class OfficeDocument:
    """What was read: the parts' text (``paged``: one part per slide), the figures, and the pictures skipped."""

    parts: list[PdfPage]
    figures: list[PdfFigure]
    problems: list[PdfProblem]
    paged: bool


def read_office(
    path: Path,
    *,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    min_side: int = DEFAULT_MIN_FIGURE_SIDE,
    pictures: bool = True,
) -> OfficeDocument:
    """Read a ``.docx`` or ``.pptx``: text by part, and (with ``pictures``) its pictures at least ``min_side``
    pixels on each side; without, no picture is decoded.

    Raises:
        OfficeError: not an Office file mmrag reads, encrypted, damaged, a ZIP bomb, or its library is missing.
    """
    _check_container(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".docx":
            return _docx(path, max_megapixels, min_side, pictures)
        if suffix == ".pptx":
            return _pptx(path, max_megapixels, min_side, pictures)
    except OfficeError:
        raise
    except ImportError as e:
        msg = f"{path}: reading {suffix} files needs {e.name}: pip install 'mmrag[office]'"
        raise OfficeError(msg, path) from e
    except Exception as e:  # python-docx/pptx raise KeyError, ValueError, lxml errors on damaged parts
        msg = f"{path}: not a readable {suffix} file ({type(e).__name__}: {e})"
        raise OfficeError(msg, path) from e
    msg = f"{path}: not a Word or PowerPoint file (.docx, .pptx)"
    raise OfficeError(msg, path)


def _check_container(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        msg = f"{path}: can't be read ({e.strerror or e})"
        raise OfficeError(msg, path) from e
    if head == _OLE_MAGIC:
        msg = f"{path}: the file is encrypted (password-protected Office files can't be read)"
        raise OfficeError(msg, path)
    try:
        with zipfile.ZipFile(path) as z:
            unzipped = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        msg = f"{path}: not a readable {path.suffix.lower()} file (not a ZIP container: {e})"
        raise OfficeError(msg, path) from e
    if unzipped > MAX_UNZIPPED_BYTES:
        msg = f"{path}: would inflate to {unzipped / 2**20:.0f} MB, past the {MAX_UNZIPPED_BYTES // 2**20} MB limit"
        raise OfficeError(msg, path)


def _picture(
    blob: bytes, page: int, index: int, caption: str, what: str, max_megapixels: float, min_side: int
) -> PdfFigure | PdfProblem | None:
    try:
        image = load_image(blob, max_megapixels=max_megapixels)
    except ImageError as e:
        return PdfProblem(page, what, str(e))
    if min(image.size) < min_side:
        return None  # an icon or a bullet, not a figure
    return PdfFigure(page, index, None, caption.strip(), image)


def _collect(
    found: Iterator[PdfFigure | PdfProblem | None], figures: list[PdfFigure], problems: list[PdfProblem]
) -> None:
    for item in found:
        if isinstance(item, PdfProblem):
            problems.append(item)
        elif item is not None and len(figures) < MAX_FIGURES:
            figures.append(item)


# --- Word ------------------------------------------------------------------------------------------


def _docx(path: Path, max_megapixels: float, min_side: int, pictures: bool) -> OfficeDocument:
    import docx

    document = docx.Document(str(path))
    paragraphs = list(document.paragraphs)
    texts = [p.text for p in paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                texts.append(" | ".join(dict.fromkeys(cells)))  # merged cells repeat their text
    figures: list[PdfFigure] = []
    problems: list[PdfProblem] = []
    if pictures:
        _collect(_docx_pictures(document, max_megapixels, min_side), figures, problems)
    return OfficeDocument([PdfPage(0, "1", "\n\n".join(texts))], figures, problems, paged=False)


def _docx_pictures(document: Any, max_megapixels: float, min_side: int) -> Iterator[PdfFigure | PdfProblem | None]:
    """Every embedded picture of the body in reading order, table cells included (inline or floating)."""
    parts = document.part.related_parts
    paragraphs = list(document.element.body.iter(_PARAGRAPH))
    index = 0
    for n, element in enumerate(paragraphs):
        for blip in element.iter(_BLIP):
            rid = blip.get(_EMBED)
            part = parts.get(rid) if rid else None
            blob = getattr(part, "blob", None)
            if not isinstance(blob, bytes):  # a linked picture, not embedded
                continue
            following = _paragraph_text(paragraphs[n + 1]) if n + 1 < len(paragraphs) else ""
            caption = following if _CAPTION.match(following) else _alt_text(element)
            yield _picture(blob, 0, index, caption, f"picture {index + 1}", max_megapixels, min_side)
            index += 1


def _paragraph_text(element: Any) -> str:
    return "".join(t.text or "" for t in element.iter(_TEXT))


def _alt_text(element: Any) -> str:
    for node in element.iter():
        if str(node.tag).endswith("}docPr") or str(node.tag).endswith("}cNvPr"):
            for text in (node.get("descr") or "", node.get("title") or ""):
                if text.strip() and not _FILE_NAME.match(text):  # writers put the picture's file name there
                    return str(text).strip()
    return ""


# --- PowerPoint ------------------------------------------------------------------------------------


def _pptx(path: Path, max_megapixels: float, min_side: int, pictures: bool) -> OfficeDocument:
    from pptx import Presentation

    deck = Presentation(str(path))
    parts: list[PdfPage] = []
    figures: list[PdfFigure] = []
    problems: list[PdfProblem] = []
    for number, slide in enumerate(deck.slides):
        texts: list[str] = []
        for shape in _shapes(slide.shapes):
            if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
                texts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False):
                for row in shape.table.rows:
                    cells = [c.text.strip() for c in row.cells if c.text.strip()]
                    if cells:
                        texts.append(" | ".join(cells))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text
            if notes.strip():
                texts.append(notes)
        parts.append(PdfPage(number, str(number + 1), "\n\n".join(texts)))
        title = slide.shapes.title.text if slide.shapes.title is not None else ""
        if pictures:
            _collect(_slide_pictures(slide, number, title, max_megapixels, min_side), figures, problems)
    return OfficeDocument(parts, figures, problems, paged=True)


def _shapes(shapes: Any) -> Iterator[Any]:
    for shape in shapes:
        if hasattr(shape, "shapes"):  # a group
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _slide_pictures(
    slide: Any, number: int, title: str, max_megapixels: float, min_side: int
) -> Iterator[PdfFigure | PdfProblem | None]:
    from pptx.shapes.picture import Picture

    index = 0
    for shape in _shapes(slide.shapes):
        if not isinstance(shape, Picture):  # placeholder pictures are Pictures too
            continue
        what = f"picture {index + 1} on slide {number + 1}"
        try:
            blob = shape.image.blob
        except Exception as e:  # a linked picture has no embedded image
            yield PdfProblem(number, what, f"no embedded image ({type(e).__name__}: {e})")
            continue
        caption = _alt_text(shape._element) or title
        yield _picture(blob, number, index, caption, what, max_megapixels, min_side)
        index += 1
