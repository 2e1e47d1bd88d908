"""The records of documents with pictures: a PDF's pages, figures and scans, and the text inside images (OCR).

:mod:`mmrag.kb.sync` decides which files need work; this module turns one file into its records:

* :meth:`Pictures.pdf_records`: a PDF's text chunks (with ``page``), its figures (with caption children), and
  its pages without text rendered to page images (with OCR children);
* :meth:`Pictures.ocr_children`: the OCR text of one image as child text records of that image.

Parts that fail (a figure past the decompression-bomb limit, OCR past its budget) are returned as problems
beside the records: the file is indexed without them and the sync reports them. See ``docs/pdf-ocr.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from mmrag.errors import OcrError, OcrUnavailableError, OfficeError, PdfError
from mmrag.files.chunking import chunk_text
from mmrag.files.ocr import OcrEngine, ocr_engine, run_ocr
from mmrag.files.office import is_slides, read_office
from mmrag.files.paths import printable
from mmrag.files.pdf import PdfFigure, PdfFile, PdfLimits, PdfPage, PdfProblem
from mmrag.files.thumbnails import thumbnail_data_uri
from mmrag.kb.records import (
    CAPTION,
    FIGURE,
    KIND,
    OCR,
    PAGE,
    PARENT,
    Metadata,
    Record,
    child_id,
    figure_id,
    page_image_id,
    text_id,
)
from mmrag.model.clip import ClipModel

DOCUMENT_THUMBNAIL_SIDE = 320
"""Figures and pages have no file of their own to show, so their stored picture is larger than a photo's."""
MAX_FIGURES = 500
"""Figures kept from one PDF (a catalogue of thousands of icons is not a set of figures)."""
PAGE_GROUP = 8
"""Rendered pages held in memory at once."""


@dataclass(frozen=True)
class PictureOptions:
    """What to extract from PDFs and whether to OCR (the settings ``ocr``, ``ocr_engine``, ``ocr_languages``,
    ``ocr_budget_s``, ``pdf_max_pages``, ``max_megapixels``). Cheap to build: the engine is found on first use.

    Args:
        ocr: ``auto`` (OCR where the engine is installed, else off with a note saying how to install it), ``on``
            (the engine is required) or ``off``.
    """

    ocr: str = "auto"
    engine: str = "rapidocr"
    languages: str = "eng+chi_sim"
    budget_s: float = 30.0
    limits: PdfLimits = field(default_factory=PdfLimits)

    def resolve(self) -> tuple[OcrEngine | None, str]:
        """The engine to use (None for no OCR) and a note for the report: the engine, or why OCR is off.

        Raises:
            OcrUnavailableError: ``ocr="on"`` and the engine or a language is missing.
            ConfigError: an unknown engine or malformed languages.
        """
        if self.ocr == "off":
            return None, "off (--no-ocr, MMRAG_OCR=off)"
        key = (self.engine, self.languages)
        with _ENGINES_LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                try:
                    engine = _ENGINES[key] = ocr_engine(self.engine, self.languages)
                except OcrUnavailableError as e:
                    if self.ocr == "on":
                        raise
                    return None, f"off: {e}"
        note = engine.name if engine.name == "rapidocr" else f"{engine.name} ({self.languages})"
        return engine, note


_ENGINES: dict[tuple[str, str], OcrEngine] = {}
"""Engines by name and languages, built once per process (RapidOCR's models take a second to load)."""
_ENGINES_LOCK = threading.Lock()


@dataclass
class FileRecords:
    """One file's records for both collections, what they count, and the parts that were skipped."""

    images: list[Record] = field(default_factory=list)
    texts: list[Record] = field(default_factory=list)
    figures: int = 0
    pages: int = 0
    ocr_images: int = 0
    ocr_pages: int = 0
    ocr_seconds: float = 0.0
    problems: list[tuple[str, str]] = field(default_factory=list)
    """(part, reason) of each part left out."""

    def stamp(self) -> None:
        """Record on every record how many the file has (so a file half written is seen and redone)."""
        total = len(self.images) + len(self.texts)
        for record in (*self.images, *self.texts):
            record.metadata["records"] = total


Progress = Callable[[str], None]


class Pictures:
    """Builds the records of PDFs and of OCR'd images with one model and one set of options.

    Args:
        clip: the embedding model (its text tower embeds the children).
        options: what to extract, and the OCR engine.
    """

    def __init__(self, clip: ClipModel, options: PictureOptions) -> None:
        self.clip = clip
        self.options = options
        self.ocr, self.note = options.resolve()

    @property
    def fingerprint(self) -> str:
        """What the ``ocr`` metadata of an image records: the engine and languages, or "" without OCR."""
        return "" if self.ocr is None else f"{self.ocr.name}:{self.ocr.languages}"

    # --- images ----------------------------------------------------------------------------------

    def ocr_children(
        self, image: Image.Image, parent_id: str, base: Metadata, name: str, out: FileRecords, *, page: bool = False
    ) -> str:
        """OCR ``image`` and add its text as child records of ``parent_id`` to ``out``. Returns the text.

        A failure (past the budget, an engine error) is added to ``out.problems``; the image keeps its record.
        """
        engine = self.ocr
        if engine is None:
            return ""
        try:
            result = run_ocr(engine, image, budget_s=self.options.budget_s, name=name)
        except OcrError as e:
            out.problems.append((f"OCR of {name}", str(e)))
            return ""
        out.ocr_seconds += result.seconds
        if not result.read:
            return ""
        if page:
            out.ocr_pages += 1
        else:
            out.ocr_images += 1
        self._children(result.text, OCR, parent_id, base, out)
        return result.text

    def _children(self, text: str, kind: str, parent_id: str, base: Metadata, out: FileRecords) -> None:
        if not text.strip():
            return
        chunks = chunk_text(text, token_count=self.clip.token_counter, max_tokens=self.clip.context_length)
        if not chunks:
            return
        vectors = self.clip.encode_texts([c.text for c in chunks])
        for c, v in zip(chunks, vectors, strict=True):
            meta = base | {KIND: kind, PARENT: parent_id, "chunk": c.index, "chunks": len(chunks), "start": c.start}
            out.texts.append(Record(child_id(parent_id, kind, c.index), v, c.text, meta))

    # --- PDFs ------------------------------------------------------------------------------------

    def pdf_records(self, path: Path, source: str, base: Metadata, on_progress: Progress | None = None) -> FileRecords:
        """Every record of the PDF at ``path``: text chunks by page, figures, and page images of scans.

        Raises:
            PdfError: the PDF can't be opened (encrypted, damaged, too many pages) or holds nothing to index.
        """
        out = FileRecords()
        name = printable(path.name)
        with PdfFile(path, self.options.limits) as pdf:
            pages = pdf.pages()
            first_chunk = self._page_texts([p for p in pages if not p.scanned], source, base | {"title": name}, out)
            labels = {p.page: p.label for p in pages}
            self._figures(pdf.figures(pages), labels, source, base, first_chunk, name, out, on_progress)
            self._scans(pdf, [p for p in pages if p.scanned], source, base, name, out, on_progress)
        if not out.images and not out.texts:
            msg = f"{path}: the PDF has no text and no pictures to index"
            raise PdfError(msg, path)
        out.stamp()
        return out

    # --- Word and PowerPoint -----------------------------------------------------------------------

    def office_records(
        self, path: Path, source: str, base: Metadata, on_progress: Progress | None = None
    ) -> FileRecords:
        """Every record of a ``.docx`` / ``.pptx``: text chunks (by slide for a deck) and its pictures as figures.

        Raises:
            OfficeError: the file can't be read (encrypted, damaged, a ZIP bomb, its library missing) or holds
                nothing to index.
        """
        out = FileRecords()
        name = printable(path.name)
        doc = read_office(path, max_megapixels=self.options.limits.max_megapixels)
        parts = [p for p in doc.parts if p.text.strip()]
        first_chunk = self._page_texts(parts, source, base | {"title": name}, out, paged=doc.paged)
        labels = {p.page: p.label for p in doc.parts} if doc.paged else None
        self._figures([*doc.figures, *doc.problems], labels, source, base, first_chunk, name, out, on_progress)
        if not out.images and not out.texts:
            msg = f"{path}: the file has no text and no pictures to index"
            raise OfficeError(msg, path)
        out.stamp()
        return out

    def _page_texts(
        self, pages: Sequence[PdfPage], source: str, base: Metadata, out: FileRecords, *, paged: bool = True
    ) -> dict[int, str]:
        """The text chunks of every page (numbered across the document); returns each page's first chunk id.
        Without ``paged`` (a Word file), the chunks carry no page."""
        pieces: list[tuple[PdfPage, str, int]] = []
        for p in pages:
            for c in chunk_text(p.text, token_count=self.clip.token_counter, max_tokens=self.clip.context_length):
                pieces.append((p, c.text, c.start))
        if not pieces:
            return {}
        vectors = self.clip.encode_texts([text for _, text, _ in pieces])
        first: dict[int, str] = {}
        for index, ((p, text, start), vector) in enumerate(zip(pieces, vectors, strict=True)):
            id_ = text_id(source, index)
            first.setdefault(p.page, id_)
            meta = base | {"chunk": index, "chunks": len(pieces), "start": start}
            if paged:
                meta |= {"page": p.page, "page_label": p.label}
            out.texts.append(Record(id_, vector, text, meta))
        return first

    def _figures(
        self,
        found: Iterable[PdfFigure | PdfProblem],
        labels: dict[int, str] | None,
        source: str,
        base: Metadata,
        first_chunk: dict[int, str],
        name: str,
        out: FileRecords,
        on_progress: Progress | None,
    ) -> None:
        figures: list[PdfFigure] = []
        for item in found:
            if isinstance(item, PdfProblem):
                out.problems.append((item.what, item.reason))
            elif len(figures) < MAX_FIGURES:
                figures.append(item)
            else:
                out.problems.append((f"figure {item.index + 1} on page {item.page + 1}", f"over {MAX_FIGURES} figures"))
        for group_start in range(0, len(figures), PAGE_GROUP):
            group = figures[group_start : group_start + PAGE_GROUP]
            encoded = self.clip.try_encode_images([f.image for f in group])
            for f in encoded.failures:
                out.problems.append((_figure_name(group[f.index], source, labels), str(f.error)))
            for index, vector in zip(encoded.indices, encoded.vectors, strict=True):
                fig = group[index]
                id_ = figure_id(source, fig.page, fig.index)
                on_page: Metadata = {}
                if labels is not None:
                    on_page = {"page": fig.page, "page_label": labels.get(fig.page, str(fig.page + 1))}
                meta = base | on_page
                meta |= {
                    KIND: FIGURE,
                    "figure": fig.index,
                    "width": fig.image.width,
                    "height": fig.image.height,
                    "caption": fig.caption,
                    "caption_source": _caption_source(source) if fig.caption else "",
                    OCR: self.fingerprint,
                }
                if fig.bbox is not None:
                    meta["bbox"] = ",".join(f"{v:.1f}" for v in fig.bbox)
                if fig.page in first_chunk:
                    meta["text_id"] = first_chunk[fig.page]
                thumb = thumbnail_data_uri(fig.image, max_side=DOCUMENT_THUMBNAIL_SIDE)
                out.images.append(Record(id_, vector, thumb, meta))
                out.figures += 1
                child = base | {k: v for k, v in on_page.items() if k == "page"}
                self._children(fig.caption, CAPTION, id_, child, out)
                where = f"{name} {_figure_name(fig, source, labels)}"
                if on_progress is not None and self.ocr is not None:
                    on_progress(f"OCR {where}")
                self.ocr_children(fig.image, id_, child, where, out)

    def _scans(
        self,
        pdf: PdfFile,
        scans: list[PdfPage],
        source: str,
        base: Metadata,
        name: str,
        out: FileRecords,
        on_progress: Progress | None,
    ) -> None:
        for group_start in range(0, len(scans), PAGE_GROUP):
            group: list[tuple[PdfPage, Image.Image]] = []
            for p in scans[group_start : group_start + PAGE_GROUP]:
                try:
                    group.append((p, pdf.render(p.page)))
                except PdfError as e:
                    out.problems.append((f"page {p.page + 1}", str(e)))
            encoded = self.clip.try_encode_images([image for _, image in group])
            for f in encoded.failures:
                out.problems.append((f"page {group[f.index][0].page + 1}", str(f.error)))
            for index, vector in zip(encoded.indices, encoded.vectors, strict=True):
                p, image = group[index]
                id_ = page_image_id(source, p.page)
                meta = base | {
                    KIND: PAGE,
                    "page": p.page,
                    "page_label": p.label,
                    "width": image.width,
                    "height": image.height,
                    "caption": p.text,
                    "caption_source": "pdf" if p.text else "",
                    OCR: self.fingerprint,
                }
                out.images.append(Record(id_, vector, thumbnail_data_uri(image, DOCUMENT_THUMBNAIL_SIDE), meta))
                out.pages += 1
                where = f"{name} page {p.page + 1}"
                if on_progress is not None and self.ocr is not None:
                    on_progress(f"OCR {where}")
                self.ocr_children(image, id_, base | {"page": p.page}, where, out, page=True)


def _caption_source(source: str) -> str:
    """Where a figure's caption came from: the document it sits in (``pdf``, ``docx``, ``pptx``)."""
    return source.rsplit(".", 1)[-1].lower() if "." in source else "pdf"


def _figure_name(fig: PdfFigure, source: str, labels: dict[int, str] | None) -> str:
    """``figure 2 on page 3`` (``on slide 3`` in a deck; nothing for a Word file, which has no pages)."""
    if labels is None:
        return f"figure {fig.index + 1}"
    return f"figure {fig.index + 1} on {'slide' if is_slides(source) else 'page'} {fig.page + 1}"
