"""The composition root: builds mmrag's objects from :class:`~mmrag.config.Settings`.

The CLI and the UI call these functions; nothing else constructs collaborators from settings.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.config import Settings
from mmrag.kb.client import open_chroma
from mmrag.kb.store import Store, read_model_record
from mmrag.langchain.embeddings import ClipEmbeddings
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel

if TYPE_CHECKING:
    from chromadb.api import ClientAPI


def build_clip(settings: Settings) -> ClipModel:
    """The CLIP model the settings name (not loaded yet)."""
    return ClipModel.from_settings(settings)


def build_embeddings(settings: Settings) -> ClipEmbeddings:
    """LangChain embeddings over the CLIP model the settings name."""
    return ClipEmbeddings(clip=build_clip(settings))


def open_client(settings: Settings) -> tuple[ClientAPI, str, Path | None]:
    """A chromadb client, where it points (for messages), and the write-lock path (embedded only); see
    :func:`mmrag.kb.client.open_chroma`.

    Raises:
        StoreError: the server can't be reached or the directory can't be opened.
    """
    opened = open_chroma(settings)
    return opened.client, opened.location, opened.lock_path


def open_knowledge_base(
    settings: Settings | None = None, *, clip: ClipModel | None = None, rebuild: bool = False, **overrides: Any
) -> KnowledgeBase:
    """The knowledge base the settings point at, with the model it records unless one is named.

    ``open_knowledge_base(db="kb", model="toy")`` reads ``MMRAG_*`` variables and applies the keyword
    overrides (any :class:`~mmrag.config.Settings` field); or pass a ``Settings``.

    With ``rebuild``, the model is loaded first (so a model that can't load loses nothing), then the knowledge
    base is emptied and will record the new model.

    Raises:
        ModelMismatchError: ``settings.model`` names a model other than the knowledge base's.
        StoreError: the store can't be opened.
    """
    settings = settings.with_(**overrides) if settings is not None else Settings.from_env(**overrides)
    client, location, lock = open_client(settings)
    if clip is None:
        record = read_model_record(client, settings.collection)
        if settings.model is None and record is not None:
            settings = replace(settings, model=record.model, pretrained=record.pretrained)
        clip = build_clip(settings)
    kb = KnowledgeBase.from_store(Store(client, clip, name=settings.collection, location=location, lock_path=lock))
    if rebuild:
        clip.load()
        kb.drop()
    kb.check_model()
    return kb


def demo_settings(settings: Settings) -> Settings:
    """Settings for the offline demo: the toy model and, unless --db says otherwise, its own store."""
    if settings.chroma_url:
        return replace(settings, model="toy", pretrained=None)
    return replace(settings, model="toy", pretrained=None, db=settings.db or settings.home / "demo" / "kb")
