"""The record schema: what one stored document is, how it is named, and which metadata keys mmrag owns.

A knowledge base named ``mmrag`` is two Chroma collections, ``mmrag_images`` and ``mmrag_texts`` (cosine
space), so that each modality can be searched and calibrated on its own. Records, as plain chromadb shows them:

* image: id ``img-<sha1(path)[:24]>``; document = a small JPEG thumbnail as a data URI (the photo stays
  where it is, referenced by path); metadata ``modality="image"``, ``source`` (absolute path),
  ``sha256``, ``size``, ``mtime_ns``, ``width``, ``height``, ``caption``, ``caption_source``, plus user
  metadata;
* text chunk: id ``txt-<sha1(path)[:24]>-<chunk>``; document = the chunk's text; metadata
  ``modality="text"``, ``source``, ``sha256``, ``size``, ``mtime_ns``, ``chunk``, ``chunks``, ``start``
  (character offset), ``title``, plus user metadata.

Documents with pictures (see ``docs/pdf-ocr.md``) add, under the same ``source``:

* PDF text chunks: as above, plus ``page`` (0-based, as LangChain's PDF loaders), ``page_label`` (what a reader
  sees), and ``start`` counted within the page's text;
* PDF figures: image records with ``kind="figure"``, id ``img-<sha1(path)[:24]>-p<page>-f<n>``, ``page``,
  ``page_label``, ``figure``, ``bbox`` ("left,bottom,right,top" in PDF points), ``caption`` (caption_source
  ``pdf``) and ``text_id`` (the first text chunk of its page);
* PDF pages without text (scans): image records with ``kind="page"``, id ``img-<sha1(path)[:24]>-p<page>``;
* text that belongs to an image (``kind="ocr"`` or ``"caption"``): child text records in the text collection, id
  ``txt-<rest of the parent id>-<kind>-<n>``, with ``parent_id`` (the image record's id), embedded by CLIP's text
  tower; a hit on a child stands for its parent (:mod:`mmrag.search.children`).

Every record of such a file carries ``records``, how many records the file has in both collections (a file
whose records are not all there is redone), and the image records carry ``ocr``: the engine that read them
("" when OCR was off).

Both collections carry the embedding model in their collection metadata (:class:`ModelRecord`), and mmrag's
chromadb embedding function in their configuration (:mod:`mmrag.kb.embedding_function`).

**Ownership.** Every record mmrag writes carries ``mmrag_owner="mmrag"`` (:data:`OWNER_KEY`). Records without
it, whose id is not the one mmrag derives from their ``source`` either (records written before the marker
existed), belong to another writer (e.g. ``langchain_chroma.Chroma.add_texts`` on the same collection): sync
neither re-embeds nor removes them, and ``remove`` leaves them; see :func:`is_owned`. Records mmrag added from
LangChain Documents carry ``mmrag_origin="documents"`` too: sync leaves those alone as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from mmrag.files.office import is_slides
from mmrag.vectors import Matrix

IMAGE = "image"
TEXT = "text"
MODALITIES = (IMAGE, TEXT)
OWNER_KEY = "mmrag_owner"
OWNER = "mmrag"
"""The marker mmrag writes on each of its records (``metadata[OWNER_KEY] == OWNER``)."""
ORIGIN_KEY = "mmrag_origin"
FROM_DOCUMENTS = "documents"
"""``metadata[ORIGIN_KEY]`` of records added as LangChain Documents (``KnowledgeBase.add_documents``): mmrag's
own, but not a folder's file, so folder sync leaves them alone."""
RESERVED_KEYS = frozenset(
    {"modality", "source", "sha256", "size", "mtime_ns", "width", "height", "caption", "caption_source"}
    | {"chunk", "chunks", "start", "start_index", "title", "format", OWNER_KEY, ORIGIN_KEY}
    | {"kind", "parent_id", "page", "page_label", "figure", "bbox", "text_id", "records", "ocr"}
)
"""Metadata keys mmrag writes itself; user metadata may not use them."""
MODEL_KEYS = ("mmrag_model", "mmrag_pretrained", "mmrag_label", "mmrag_dim")
"""Collection metadata keys of the model record."""

Metadata = dict[str, str | int | float | bool]

KIND = "kind"
PARENT = "parent_id"
FIGURE = "figure"
"""``kind`` of an image record that is a figure extracted from a PDF."""
PAGE = "page"
"""``kind`` of an image record that is a rendered PDF page (a page without text)."""
OCR = "ocr"
"""``kind`` of a child text record holding the text read from its parent image."""
CAPTION = "caption"
"""``kind`` of a child text record holding its parent figure's caption."""
CHILD_KINDS = (OCR, CAPTION)
DOCUMENT_IMAGE_KINDS = (FIGURE, PAGE)


@dataclass(frozen=True)
class ModelRecord:
    """The embedding model a knowledge base was built with."""

    model: str
    pretrained: str | None
    label: str
    dim: int

    def collection_metadata(self) -> dict[str, str | int]:
        """The model record as Chroma collection metadata."""
        return {
            "mmrag_model": self.model,
            "mmrag_pretrained": self.pretrained or "",
            "mmrag_label": self.label,
            "mmrag_dim": self.dim,
        }

    @classmethod
    def from_collection_metadata(cls, meta: Mapping[str, Any]) -> ModelRecord | None:
        """The record in a collection's metadata, or None when it holds none."""
        if "mmrag_label" not in meta:
            return None
        return cls(
            str(meta["mmrag_model"]),
            str(meta["mmrag_pretrained"]) or None,
            str(meta["mmrag_label"]),
            int(meta["mmrag_dim"]),
        )


@dataclass(frozen=True)
class Record:
    """One stored document, ready to write."""

    id: str
    embedding: Matrix | list[float]
    document: str
    metadata: Metadata


def image_id(source: str) -> str:
    """The id of the image stored for ``source`` (an absolute POSIX path)."""
    return "img-" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:24]


def text_id(source: str, chunk: int) -> str:
    """The id of chunk ``chunk`` of the text document ``source``."""
    return f"txt-{hashlib.sha1(source.encode('utf-8')).hexdigest()[:24]}-{chunk:05d}"


def figure_id(source: str, page: int, index: int) -> str:
    """The id of figure ``index`` (0-based) on page ``page`` (0-based) of the PDF ``source``."""
    return f"{image_id(source)}-p{page:05d}-f{index:03d}"


def page_image_id(source: str, page: int) -> str:
    """The id of the rendered image of page ``page`` (0-based) of the PDF ``source``."""
    return f"{image_id(source)}-p{page:05d}"


def child_id(parent_id: str, kind: str, n: int) -> str:
    """The id of child text ``n`` of kind ``kind`` (``ocr``, ``caption``) of the image record ``parent_id``."""
    return f"txt-{parent_id.removeprefix('img-')}-{kind}-{n:03d}"


def rebase_id(id_: str, old_source: str, new_source: str) -> str:
    """The id a record of ``old_source`` gets when its file moves to ``new_source`` (the path hash swapped)."""
    old = hashlib.sha1(old_source.encode("utf-8")).hexdigest()[:24]
    new = hashlib.sha1(new_source.encode("utf-8")).hexdigest()[:24]
    return id_.replace(old, new, 1)


def is_child(metadata: Mapping[str, Any]) -> bool:
    """A text record that stands for its parent image (OCR text or a figure's caption)."""
    return bool(metadata.get(PARENT))


def page_of(metadata: Mapping[str, Any]) -> int | None:
    """The 0-based page a record comes from (None when it is not from a paged document)."""
    page = metadata.get("page")
    return int(page) if isinstance(page, int | float) and not isinstance(page, bool) else None


def page_place(source: str, page: int) -> str:
    """A 0-based page as people see it: ``page 4``, or ``slide 4`` in a slide deck (``.pptx``)."""
    return f"{'slide' if is_slides(source) else 'page'} {page + 1}"


def located(source: str, page: int | None) -> str:
    """``source`` with its page when it has one: ``/docs/paper.pdf, page 4``, ``/docs/deck.pptx, slide 2``."""
    return source if page is None else f"{source}, {page_place(source, page)}"


def citation(source: str, metadata: Mapping[str, Any]) -> str:
    """How an answer names a record's place: ``file.pdf, page 4`` (1-based) for paged documents, else the name."""
    return located(PurePath(source).name or source, page_of(metadata))


def stored_metadata(raw: Mapping[str, Any] | None) -> Metadata:
    """Chroma's metadata for one record, without the None values it fills in."""
    return {k: v for k, v in (raw or {}).items() if isinstance(v, str | int | float | bool)}


def is_owned(id_: str, metadata: Mapping[str, Any]) -> bool:
    """Whether mmrag wrote this record: it carries the owner marker, or (records written before the marker
    existed) its id is the one mmrag derives from its ``source``."""
    if metadata.get(OWNER_KEY) == OWNER:
        return True
    source = metadata.get("source")
    if not isinstance(source, str) or not source:
        return False
    if id_.startswith("img-"):
        return id_ == image_id(source)
    chunk = metadata.get("chunk")
    return id_.startswith("txt-") and isinstance(chunk, int) and id_ == text_id(source, chunk)
