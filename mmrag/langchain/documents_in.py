"""LangChain Documents into a knowledge base: texts from loaders and splitters, and images, as mmrag records.

A Document is an **image** when its metadata has ``image_path`` (a path), ``image_bytes`` (bytes), or
``image`` (bytes, a path, a ``data:image/…`` URI or base64, the multimodal cookbook's shape), or when its
``page_content`` is itself a base64 image. Its ``page_content`` (unless base64) is the image's caption. Every
other Document is a **text**, one record as it is (split long texts first: CLIP reads 77 tokens).

Records get mmrag's schema: ``modality``, ``source`` (the Document's ``source``, else ``""``), ``sha256``,
``title``, ``chunk``/``chunks``/``start``/``start_index`` for texts, ``width``/``height``/``caption`` and a
thumbnail (the record's document) for images, the owner marker, ``mmrag_origin="documents"`` (folder sync
leaves them alone), and the Document's other scalar metadata (``page``…).

Ids are stable: the Document's ``id`` when it has one (LangChain's indexing API passes its own), else
``doc-`` and a hash of the modality, source, content (an image's bytes) and metadata. A record already stored
with the same id and content is left as it is, so adding the same Documents twice is a no-op.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from PIL import Image

from mmrag.files.images import ImageSource, original_size
from mmrag.files.paths import printable
from mmrag.files.thumbnails import thumbnail_data_uri
from mmrag.kb.records import FROM_DOCUMENTS, IMAGE, ORIGIN_KEY, OWNER, OWNER_KEY, TEXT, Metadata, Record
from mmrag.kb.report import Skipped
from mmrag.kb.store import Store

IMAGE_KEYS = ("image_path", "image_bytes", "image")
"""Document metadata keys that make it an image (and are not stored: bytes don't fit in Chroma metadata)."""
_BASE64_IMAGE_STARTS = ("/9j/", "iVBORw0KGgo", "R0lGOD", "UklGR")


@dataclass
class AddedDocuments:
    """What :meth:`~mmrag.langchain.knowledge_base.KnowledgeBase.add_documents` did.

    Attributes:
        ids: one per input Document, in order: its record's id, or None when it was skipped.
        added: records written (new, or changed since the last add).
        unchanged: records already stored with this content (not embedded again).
        skipped: the Documents that could not be added (an image that can't be read), and why.
    """

    ids: list[str | None] = field(default_factory=list)
    added: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    index: int
    id: str
    modality: str
    sha256: str
    content: str
    image: ImageSource | None
    metadata: Metadata


def add_documents(store: Store, documents: Sequence[Document], ids: Sequence[str] | None = None) -> AddedDocuments:
    """Embed and write LangChain Documents as mmrag records; see the module docstring.

    Raises:
        ConfigError: ``ids`` is not one per Document.
        KnowledgeBaseLockedError: another process is writing to the knowledge base.
    """
    from mmrag.errors import ConfigError

    if ids is not None and len(ids) != len(documents):
        msg = f"add_documents got {len(ids)} ids for {len(documents)} documents; give one id per document"
        raise ConfigError(msg)
    report = AddedDocuments(ids=[None] * len(documents))
    items = []
    for i, doc in enumerate(documents):
        item = _item(i, doc, ids[i] if ids is not None else None)
        if item.modality == TEXT and not item.content.strip():
            report.skipped.append(Skipped(str(item.metadata.get("source") or item.id), "the document is empty"))
        else:
            items.append(item)
    with store.write_lock():
        for modality in (IMAGE, TEXT):
            group = [item for item in items if item.modality == modality]
            stored = {r.id: r.metadata for r in store.get(modality, [item.id for item in group])}
            fresh = []
            for item in group:
                if stored.get(item.id, {}).get("sha256") == item.sha256:
                    report.ids[item.index] = item.id
                    report.unchanged += 1
                else:
                    fresh.append(item)
            if modality == IMAGE:
                _write_images(store, fresh, report)
            else:
                _write_texts(store, fresh, report)
    return report


def _item(index: int, doc: Document, given_id: str | None) -> _Item:
    meta = doc.metadata or {}
    image = _image_of(doc)
    modality = IMAGE if image is not None else TEXT
    content = "" if image is not None and _is_base64_image(doc.page_content) else doc.page_content
    source = str(meta.get("source", "") or "")
    identity = image if isinstance(image, bytes) else _file_identity(image)
    digest = hashlib.sha256()
    digest.update(json.dumps([modality, source, content, _scalars(meta)], sort_keys=True, default=str).encode())
    digest.update(identity.encode() if isinstance(identity, str) else identity)
    sha = digest.hexdigest()
    id_ = given_id or doc.id or f"doc-{sha[:32]}"
    metadata: Metadata = _scalars(meta)
    metadata.update(
        {
            "modality": modality,
            "source": source,
            "sha256": sha,
            "title": printable(Path(source).name) if source else "",
            OWNER_KEY: OWNER,
            ORIGIN_KEY: FROM_DOCUMENTS,
        }
    )
    if modality == TEXT:
        start = meta.get("start_index", meta.get("start", 0))
        start = int(start) if isinstance(start, int) else 0
        metadata.update(chunk=0, chunks=1, start=start, start_index=start)
    else:
        metadata.update(caption=content, caption_source="document" if content else "none")
    return _Item(index, id_, modality, sha, content, image, metadata)


def _file_identity(image: ImageSource | None) -> str:
    """What identifies an image's content: a hash of the file's bytes (so a changed file is embedded again, an
    unchanged one not); "" for none."""
    if image is None:
        return ""
    if isinstance(image, Image.Image):
        return hashlib.sha256(image.tobytes()).hexdigest()
    path = Path(str(image))
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return str(path)  # unreadable: the embedding step reports it


def _scalars(meta: Mapping[str, Any]) -> Metadata:
    """The Document's metadata that Chroma can store (scalars), without the image keys."""
    return {str(k): v for k, v in meta.items() if k not in IMAGE_KEYS and isinstance(v, str | int | float | bool)}


def _image_of(doc: Document) -> ImageSource | None:
    meta = doc.metadata or {}
    for key in IMAGE_KEYS:
        value = meta.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bytes | Image.Image):
            return value
        if isinstance(value, Path):
            return value
        if isinstance(value, str):
            decoded = _decoded(value)
            return decoded if decoded is not None else Path(value).expanduser()
    if _is_base64_image(doc.page_content):
        return _decoded(doc.page_content)
    return None


def _is_base64_image(text: str) -> bool:
    return text.startswith(("data:image/", *_BASE64_IMAGE_STARTS))


def _decoded(value: str) -> bytes | None:
    """The bytes of a ``data:image/…`` URI or of base64 image data, else None (a path)."""
    if not _is_base64_image(value):
        return None
    payload = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _write_images(store: Store, items: Sequence[_Item], report: AddedDocuments) -> None:
    if not items:
        return
    facts: dict[int, tuple[str, int, int]] = {}

    def remember(index: int, image: Image.Image) -> None:
        facts[index] = (thumbnail_data_uri(image), *original_size(image))

    sources = [item.image for item in items]
    result = store.clip.try_encode_images(sources, on_image=remember)  # type: ignore[arg-type]
    records = []
    for index, vector in zip(result.indices, result.vectors, strict=True):
        item = items[index]
        thumb, width, height = facts[index]
        records.append(Record(item.id, vector, thumb, item.metadata | {"width": width, "height": height}))
        report.ids[item.index] = item.id
    store.upsert(IMAGE, records)
    report.added += len(records)
    for failure in result.failures:
        item = items[failure.index]
        name = str(item.metadata.get("source") or item.id)
        report.skipped.append(Skipped(name, str(failure.error)))


def _write_texts(store: Store, items: Sequence[_Item], report: AddedDocuments) -> None:
    if not items:
        return
    vectors = store.clip.encode_texts([item.content for item in items])
    store.upsert(TEXT, [Record(i.id, v, i.content, i.metadata) for i, v in zip(items, vectors, strict=True)])
    for item in items:
        report.ids[item.index] = item.id
    report.added += len(items)
