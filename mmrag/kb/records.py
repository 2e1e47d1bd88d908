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
from typing import Any

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
)
"""Metadata keys mmrag writes itself; user metadata may not use them."""
MODEL_KEYS = ("mmrag_model", "mmrag_pretrained", "mmrag_label", "mmrag_dim")
"""Collection metadata keys of the model record."""

Metadata = dict[str, str | int | float | bool]


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
