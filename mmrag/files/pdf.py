"""PDFs as text and pictures: each page's text, the figures large enough to matter, and pages without text.

Read with `pypdfium2`_ (Google's PDFium; the bindings are Apache-2.0 or BSD-3-Clause, PDFium itself
BSD-3-Clause and Apache-2.0: both fit mmrag's Apache-2.0).

* **Pages** are numbered as LangChain's PDF loaders number them: ``page`` is 0-based (the first page is
  ``page=0``), and ``page_label`` is the label a reader sees (the PDF's own page label where it defines one,
  else the 1-based number). People are shown ``file.pdf, page 4``, 1-based (:func:`mmrag.kb.records.citation`).
* **Figures**: embedded image objects whose pixels are at least ``min_figure_side`` on their shorter side and
  that cover at least ``min_figure_area`` of the page. Each has its page, its position on the page in PDF points
  (``left, bottom, right, top``, origin bottom-left) and the caption found near it (a line starting ``Figure 3``,
  ``Fig. 3``, ``Table 3`` or ``图 3``, below the figure first, then above).
* **Pages without text** (scans: fewer than ``MIN_PAGE_TEXT`` characters in their text layer) are rendered to an
  image (their longer side ``render_side`` pixels), to be embedded and OCR'd; their embedded images are not
  extracted as figures (the rendered page holds them).

Every limit has a setting: a PDF declaring more than ``max_pages`` pages is refused whole, and a figure whose
declared size is past ``max_megapixels`` (a decompression bomb) is skipped and reported, keeping the others.

.. _pypdfium2: https://github.com/pypdfium2-team/pypdfium2
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from PIL import Image

from mmrag.errors import PdfError

DEFAULT_MAX_PAGES = 2000
DEFAULT_MIN_FIGURE_SIDE = 64
DEFAULT_MIN_FIGURE_AREA = 0.02
DEFAULT_RENDER_SIDE = 2000
MIN_PAGE_TEXT = 16
"""A page with fewer characters than this in its text layer is treated as a scan."""
MAX_CAPTION_CHARS = 500
_CAPTION = re.compile(r"^\s*(fig(ure)?\.?|table|plate|图|表)\s*[0-9IVXivx]+", re.IGNORECASE)
BBox = tuple[float, float, float, float]
"""A rectangle on a page in PDF points: left, bottom, right, top (origin at the bottom left)."""


@dataclass(frozen=True)
class PdfLimits:
    """What a PDF may cost, and what counts as a figure. Each field is a setting (see :mod:`mmrag.config`)."""

    max_pages: int = DEFAULT_MAX_PAGES
    max_megapixels: float = 100.0
    min_figure_side: int = DEFAULT_MIN_FIGURE_SIDE
    min_figure_area: float = DEFAULT_MIN_FIGURE_AREA
    render_side: int = DEFAULT_RENDER_SIDE


@dataclass(frozen=True)
class PdfPage:
    """One page's text layer: ``page`` 0-based (LangChain's), ``label`` as a reader sees it."""

    page: int
    label: str
    text: str

    @property
    def scanned(self) -> bool:
        """Too little text to be anything but a scan (or a page of pictures): it is rendered and OCR'd."""
        return len("".join(self.text.split())) < MIN_PAGE_TEXT


@dataclass(frozen=True)
class PdfFigure:
    """An embedded image large enough to matter: its page, its index on the page, position, caption, pixels."""

    page: int
    index: int
    bbox: BBox | None
    caption: str
    image: Image.Image = field(repr=False)


@dataclass(frozen=True)
class PdfProblem:
    """A part of a PDF that was skipped (a figure past the limit, a page that would not render), and why."""

    page: int
    what: str
    reason: str


class PdfFile:
    """An open PDF (use it as a context manager; it holds the file until closed).

    Setup:
        ``pypdfium2`` is a dependency of mmrag.

    Use:
        .. code-block:: python

            with PdfFile(Path("paper.pdf")) as pdf:
                pages = pdf.pages()
                for item in pdf.figures(pages):
                    ...  # PdfFigure, or PdfProblem for one that was skipped

    Raises:
        PdfError: the file is encrypted, damaged, not a PDF, or declares more than ``limits.max_pages`` pages.
    """

    def __init__(self, path: Path, limits: PdfLimits | None = None) -> None:
        import pypdfium2 as pdfium

        self.path = path
        self.limits = limits or PdfLimits()
        try:
            self._pdf: Any = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as e:
            text = str(e).lower()
            if "password" in text:
                msg = f"{path}: the PDF is encrypted (password protected); decrypt it to index it"
            else:
                msg = f"{path}: not a readable PDF ({e})"
            raise PdfError(msg, path) from e
        except (OSError, ValueError) as e:
            msg = f"{path}: not a readable PDF ({e})"
            raise PdfError(msg, path) from e
        count = len(self._pdf)
        if count > self.limits.max_pages:
            self.close()
            msg = (
                f"{path}: the PDF declares {count} pages, over the limit of {self.limits.max_pages}; raise "
                "pdf_max_pages (env MMRAG_PDF_MAX_PAGES) if it really is that long"
            )
            raise PdfError(msg, path)
        if count == 0:
            self.close()
            msg = f"{path}: the PDF has no pages"
            raise PdfError(msg, path)
        self.page_count = count

    def __enter__(self) -> PdfFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_pdf", None) is not None:
            self._pdf.close()
            self._pdf = None

    def pages(self) -> list[PdfPage]:
        """Every page's text (a page whose text can't be read counts as text-less, so it is rendered).

        Raises:
            PdfError: the document itself is damaged beyond its first page.
        """
        import pypdfium2 as pdfium

        labels = self._labels()
        out = []
        for index in range(self.page_count):
            try:
                page = self._pdf[index]
                try:
                    textpage = page.get_textpage()
                    text = textpage.get_text_range()
                    textpage.close()
                finally:
                    page.close()
            except pdfium.PdfiumError:
                text = ""
            out.append(PdfPage(index, labels.get(index, str(index + 1)), _clean(text)))
        return out

    def figures(self, pages: list[PdfPage]) -> Iterator[PdfFigure | PdfProblem]:
        """The figures of the pages that have text (a scanned page is rendered whole instead)."""
        for info in pages:
            if info.scanned:
                continue
            yield from self._page_figures(info.page)

    def render(self, page: int) -> Image.Image:
        """The page as an RGB image, its longer side ``limits.render_side`` pixels (never past the megapixel limit).

        Raises:
            PdfError: the page can't be rendered.
        """
        import pypdfium2 as pdfium

        try:
            p = self._pdf[page]
            try:
                width, height = p.get_size()
                scale = self.limits.render_side / max(width, height, 1.0)
                megapixels = width * height * scale * scale / 1e6
                if megapixels > self.limits.max_megapixels:
                    scale *= (self.limits.max_megapixels / megapixels) ** 0.5
                image: Image.Image = p.render(scale=scale).to_pil().convert("RGB")
            finally:
                p.close()
        except (pdfium.PdfiumError, ValueError, OSError) as e:
            msg = f"{self.path}: page {page + 1} could not be rendered ({e})"
            raise PdfError(msg, self.path) from e
        return image

    # --- the parts ---------------------------------------------------------------------------------

    def _labels(self) -> dict[int, str]:
        """The PDF's own page labels, where it defines them (pypdf reads them; pdfium needs a page each)."""
        try:
            from pypdf import PdfReader

            reader = PdfReader(self.path)
            root: Any = reader.trailer["/Root"]
            if "/PageLabels" not in root:
                return {}
            return dict(enumerate(reader.page_labels))
        except Exception:  # labels are a nicety: any failure reading them leaves the plain numbers
            return {}

    def _page_figures(self, index: int) -> Iterator[PdfFigure | PdfProblem]:
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_c

        limits = self.limits
        try:
            page = self._pdf[index]
        except pdfium.PdfiumError as e:
            yield PdfProblem(index, "page", f"{self.path}: page {index + 1} could not be read ({e})")
            return
        try:
            width, height = page.get_size()
            page_area = max(width * height, 1.0)
            lines = _text_lines(page)
            found = 0
            for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=4):
                try:
                    bbox: BBox | None = tuple(float(v) for v in obj.get_bounds())  # type: ignore[assignment]
                except pdfium.PdfiumError:
                    bbox = None
                try:
                    meta = obj.get_metadata()
                    px_w, px_h = int(meta.width), int(meta.height)
                except pdfium.PdfiumError:
                    px_w, px_h = obj.get_px_size()
                if min(px_w, px_h) < limits.min_figure_side:
                    continue
                if bbox is not None:
                    shown = max(0.0, bbox[2] - bbox[0]) * max(0.0, bbox[3] - bbox[1])
                    if shown / page_area < limits.min_figure_area:
                        continue
                what = f"figure {found + 1} on page {index + 1}"
                megapixels = px_w * px_h / 1e6
                if megapixels > limits.max_megapixels:
                    found += 1
                    reason = (
                        f"{self.path}: {what} is {px_w}x{px_h} = {megapixels:.1f} megapixels, over the limit of "
                        f"{limits.max_megapixels:g} megapixels (a guard against decompression bombs); raise "
                        "max_megapixels (flag --max-megapixels, env MMRAG_MAX_MEGAPIXELS) if you trust it"
                    )
                    yield PdfProblem(index, what, reason)
                    continue
                try:
                    image = _pixels(obj, page)
                except (pdfium.PdfiumError, ValueError, OSError) as e:
                    found += 1
                    yield PdfProblem(index, what, f"{self.path}: {what} could not be decoded ({e})")
                    continue
                caption = _caption_near(bbox, lines) if bbox is not None else ""
                yield PdfFigure(index, found, bbox, caption, image)
                found += 1
        finally:
            page.close()


def _pixels(obj: Any, page: Any) -> Image.Image:
    """An image object's own pixels (without the page's transform), as RGB; rendered when that fails."""
    import pypdfium2 as pdfium

    try:
        bitmap = obj.get_bitmap(render=False)
    except pdfium.PdfiumError:
        bitmap = obj.get_bitmap(render=True)
    image: Image.Image = bitmap.to_pil()
    return image.convert("RGB") if image.mode != "RGB" else image


@dataclass(frozen=True)
class _Line:
    text: str
    bbox: BBox


def _text_lines(page: Any) -> list[_Line]:
    """The page's text as pdfium's rectangles (about one a line), with their positions."""
    import pypdfium2 as pdfium

    try:
        textpage = page.get_textpage()
    except pdfium.PdfiumError:
        return []
    try:
        lines = []
        for i in range(textpage.count_rects()):
            rect = tuple(float(v) for v in textpage.get_rect(i))
            left, bottom, right, top = rect
            text = textpage.get_text_bounded(left, bottom, right, top).strip()
            if text:
                lines.append(_Line(" ".join(text.split()), (left, bottom, right, top)))
        return lines
    finally:
        textpage.close()


def _caption_near(bbox: BBox, lines: list[_Line]) -> str:
    """The caption of a figure: the nearest caption-like line below it (else above), with the lines that follow."""
    left, bottom, right, top = bbox
    height = max(top - bottom, 1.0)
    best: tuple[float, int] | None = None
    for i, line in enumerate(lines):
        if not _CAPTION.match(line.text):
            continue
        l_left, l_bottom, l_right, l_top = line.bbox
        if l_right < left - 20 or l_left > right + 20:
            continue  # not under or over this figure
        if l_top <= bottom + 2:
            distance = bottom - l_top
        elif l_bottom >= top - 2:
            distance = (l_bottom - top) * 1.5  # a caption above counts, but below is the usual place
        else:
            continue
        if distance > height:
            continue
        if best is None or distance < best[0]:
            best = (distance, i)
    if best is None:
        return ""
    first = lines[best[1]]
    parts = [first.text]
    line_height = max(first.bbox[3] - first.bbox[1], 1.0)
    previous = first
    for line in lines[best[1] + 1 : best[1] + 4]:
        gap = previous.bbox[1] - line.bbox[3]
        if gap < -1 or gap > line_height or _CAPTION.match(line.text):
            break
        parts.append(line.text)
        previous = line
    return " ".join(parts)[:MAX_CAPTION_CHARS]


def _clean(text: str) -> str:
    """pdfium's page text with Windows line ends and form feeds made plain."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n").replace("\x00", "").strip()


def is_pdf(path: Path) -> bool:
    """Named like a PDF (``.pdf``): read as text and pictures by :class:`PdfFile`."""
    return path.suffix.lower() == ".pdf"
