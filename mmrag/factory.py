"""The composition root: builds mmrag's objects from :class:`~mmrag.config.Settings`.

The CLI and the UI call these functions; nothing else constructs collaborators from settings. Importing it
imports chromadb but neither torch nor LangChain: LangChain's embeddings class loads in
:func:`build_embeddings`, and the knowledge base's LangChain faces when asked for.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.config import Settings
from mmrag.errors import CorruptStoreError, KnowledgeBaseLockedError
from mmrag.kb.client import check_database, forget_embedded, open_chroma
from mmrag.kb.store import Store, read_model_record
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from mmrag.kb.pictures import PictureOptions
    from mmrag.langchain.embeddings import ClipEmbeddings


def build_clip(settings: Settings) -> ClipModel:
    """The CLIP model the settings name (not loaded yet)."""
    return ClipModel.from_settings(settings)


def build_embeddings(settings: Settings) -> ClipEmbeddings:
    """LangChain embeddings over the CLIP model the settings name."""
    from mmrag.langchain.embeddings import ClipEmbeddings

    return ClipEmbeddings(clip=build_clip(settings))


def open_client(
    settings: Settings, *, create: bool = True, thorough: bool = False
) -> tuple[ClientAPI, str, Path | None]:
    """A chromadb client, where it points (for messages), and the write-lock path (embedded only); see
    :func:`mmrag.kb.client.open_chroma`.

    Raises:
        StoreError: the server can't be reached or the directory can't be opened (or holds no knowledge base
            and ``create`` is False, or its database is damaged).
    """
    opened = open_chroma(settings, create=create, thorough=thorough)
    return opened.client, opened.location, opened.lock_path


def picture_options(settings: Settings) -> PictureOptions:
    """PDF figures and pages, and OCR, as the settings say (the engine is found on the first sync)."""
    from mmrag.files.pdf import PdfLimits
    from mmrag.kb.pictures import PictureOptions

    limits = PdfLimits(max_pages=settings.pdf_max_pages, max_megapixels=settings.max_megapixels)
    return PictureOptions(settings.ocr, settings.ocr_engine, settings.ocr_languages, settings.ocr_budget_s, limits)


def open_knowledge_base(
    settings: Settings | None = None,
    *,
    clip: ClipModel | None = None,
    rebuild: bool = False,
    create: bool = True,
    thorough: bool = False,
    **overrides: Any,
) -> KnowledgeBase:
    """The knowledge base the settings point at, with the model it records unless one is named.

    ``open_knowledge_base(db="kb", model="toy")`` reads ``MMRAG_*`` variables and applies the keyword
    overrides (any :class:`~mmrag.config.Settings` field); or pass a ``Settings``.

    Args:
        clip: use this model (else the one the knowledge base records, else the settings' model).
        rebuild: load the model first (so a model that can't load loses nothing), then empty the knowledge
            base, which will record the new model. An embedded knowledge base whose database is damaged is
            moved aside to ``DIR.damaged-TIMESTAMP`` (never deleted) and started afresh.
        create: make an embedded knowledge base where there is none yet. Commands that only read pass False, so
            a mistyped ``--db`` is an error rather than a new empty store.
        thorough: check the embedded database file whole before use (``mmrag status`` and ``index`` do).

    Raises:
        ModelMismatchError: ``settings.model`` names a model other than the knowledge base's.
        NoKnowledgeBaseError: ``create`` is False and there is no knowledge base there.
        CorruptStoreError: the embedded database file is damaged (rebuild, or restore a backup).
        StoreError: the store can't be opened.
    """
    settings = settings.with_(**overrides) if settings is not None else Settings.from_env(**overrides)
    if rebuild and not settings.chroma_url:
        if clip is None:
            clip = build_clip(settings)
        clip.load()
        _set_aside_if_damaged(settings.db_path)
    opened = open_chroma(settings, create=create, thorough=thorough)
    client, location, lock = opened.client, opened.location, opened.lock_path
    if clip is None:
        record = read_model_record(client, settings.collection, location)
        if settings.model is None and record is not None:
            settings = replace(settings, model=record.model, pretrained=record.pretrained)
        clip = build_clip(settings)
    store = Store(client, clip, name=settings.collection, location=location, lock_path=lock, freshness=opened.freshness)
    kb = KnowledgeBase.from_store(store, prior_cache=settings.home / "calibration")
    kb.pictures = picture_options(settings)
    journal = store.journal_path
    if journal is not None and journal.is_file():  # a removal was interrupted: finish it before anything reads
        with contextlib.suppress(KnowledgeBaseLockedError), store.write_lock():
            pass
    if rebuild:
        clip.load()
        kb.drop()
    kb.check_model()
    return kb


def _set_aside_if_damaged(db: Path) -> None:
    """Move a damaged embedded knowledge base out of the way (``DIR.damaged-TIMESTAMP``) so a rebuild can start."""
    try:
        check_database(db, thorough=True)
    except CorruptStoreError:
        aside = db.with_name(f"{db.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        db.rename(aside)
        forget_embedded(db)
        logging.getLogger(__name__).warning("moved the damaged knowledge base %s to %s", db, aside)


def offline_settings(settings: Settings) -> Settings:
    """Where a folder is indexed with the toy model when the configured model can't be had (``home/offline/kb``;
    never the user's own store, so toy vectors don't mix with real ones)."""
    return replace(settings, model="toy", pretrained=None, chroma_url=None, db=settings.home / "offline" / "kb")


def demo_settings(settings: Settings) -> Settings:
    """Settings for the offline demo: the toy model and, unless --db says otherwise, its own store."""
    if settings.chroma_url:
        return replace(settings, model="toy", pretrained=None)
    return replace(settings, model="toy", pretrained=None, db=settings.db or settings.home / "demo" / "kb")
