"""The UI's only door into mmrag: what the chat page does, as plain functions and the types it shows.

Open the knowledge base (falling back visibly to the toy demo), load the chat model, answer with the sidebar's
options, search by image, classify and match uploads, keep uploads, index, browse and delete.

The Streamlit page (:mod:`mmrag.ui.page`) only draws widgets and calls these; it imports nothing else of mmrag
(so everything here is testable without Streamlit). It wraps :func:`open_workspace`, :func:`open_llm` and
:func:`classifier` in ``st.cache_resource`` so each loads once per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.config import Settings
from mmrag.defaults import DEFAULT_K, DEFAULT_THRESHOLD
from mmrag.errors import ConfigError, LLMUnavailableError, MassRemovalError, MmragError, ModelUnavailableError
from mmrag.factory import demo_settings, open_knowledge_base
from mmrag.files.paths import source_of
from mmrag.files.thumbnails import thumbnail_bytes
from mmrag.files.uploads import UPLOAD_TYPES, SavedUpload, save_upload, upload_folder
from mmrag.kb.records import IMAGE, MODALITIES, TEXT
from mmrag.kb.report import ProgressCallback, Skipped, SyncProgress, SyncReport
from mmrag.langchain.answer import Answer, AnswerImage, AnswerSource, AnswerStream, stream_answer
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.language import is_multilingual, language_warning
from mmrag.search.hits import Hit
from mmrag.search.similar import similar_images as find_similar
from mmrag.search.zeroshot import Classification, Match, ZeroShotClassifier

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
else:  # the page names it in annotations only
    BaseChatModel = Any

__all__ = [
    "DEFAULT_K",
    "DEFAULT_THRESHOLD",
    "IMAGE",
    "MAX_UI_K",
    "NO_LLM",
    "TEXT",
    "UPLOAD_TYPES",
    "Answer",
    "AnswerImage",
    "AnswerSource",
    "AnswerStream",
    "BaseChatModel",
    "Classification",
    "GalleryItem",
    "Hit",
    "LLMUnavailableError",
    "MassRemovalError",
    "Match",
    "MmragError",
    "SavedUpload",
    "Skipped",
    "SyncProgress",
    "SyncReport",
    "Workspace",
    "ZeroShotClassifier",
    "ask",
    "classifier",
    "delete_document",
    "document_sources",
    "export_secrets",
    "gallery",
    "index_folder",
    "index_paths",
    "keep_upload",
    "llm_choice",
    "open_llm",
    "open_workspace",
    "parse_labels",
    "query_note",
    "settings_for",
    "similar_images",
    "thumbnail_bytes",
]

NO_LLM = "none"
"""The LLM choice that means retrieval-only answers."""
DEMO_PER_CLASS = 2
MAX_UI_K = 20
"""The k slider's upper end."""


@dataclass
class Workspace:
    """The knowledge base the UI works on, the settings that opened it, and why it is the demo, if it is.

    ``lock`` serialises writes (indexing, deleting) from the UI's sessions, which share one workspace.
    """

    kb: KnowledgeBase
    settings: Settings
    fallback: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def model_label(self) -> str:
        return self.kb.clip.label

    @property
    def multilingual(self) -> bool:
        return is_multilingual(self.model_label)


def settings_for(
    *, db: str = "", chroma_url: str = "", model: str = "", env: Mapping[str, str] | None = None
) -> Settings:
    """Settings from ``MMRAG_*`` variables, with the sidebar's non-empty choices on top.

    Raises:
        ConfigError: a bad value (e.g. both a directory and a server).
    """
    base = Settings.from_env(dict(env) if env is not None else None)
    db, chroma_url, model = db.strip(), chroma_url.strip(), model.strip()
    if chroma_url:
        base = replace(base, db=None)
    elif db:
        base = replace(base, chroma_url=None)
    return base.with_(db=db or None, chroma_url=chroma_url or None, model=model or None)


def demo_workspace_settings(settings: Settings) -> Settings:
    """The demo's settings: the toy model in ``home/demo/kb``, whatever store the settings named (so the
    fallback never writes toy vectors into the user's knowledge base)."""
    return demo_settings(replace(settings, db=None, chroma_url=None))


def ensure_demo(settings: Settings, *, per_class: int = DEMO_PER_CLASS) -> KnowledgeBase:
    """The toy model's demo knowledge base in ``home/demo/kb``, drawn and indexed there if it is empty."""
    demo = demo_workspace_settings(settings)
    kb = open_knowledge_base(demo)
    if kb.counts().images == 0:
        folder = demo.home / "demo" / "files"
        from mmrag.toy.demo import write_demo_folder

        write_demo_folder(folder, per_class=per_class)
        kb.sync(folder)
    return kb


def open_workspace(settings: Settings) -> Workspace:
    """Open the knowledge base and load its model; if the weights can't be had, the toy demo instead.

    The fallback is visible: :attr:`Workspace.fallback` says what happened, for a banner.

    Raises:
        ModelMismatchError, StoreError, ModelError, ConfigError: as :func:`~mmrag.factory.open_knowledge_base`.
    """
    try:
        kb = open_knowledge_base(settings)
        kb.clip.load()
    except ModelUnavailableError as e:
        demo = demo_workspace_settings(settings)
        kb = ensure_demo(settings)
        note = (
            f"The model's weights are not available ({e}). Showing the offline toy model and its demo "
            f"knowledge base ({kb.location}) instead; it only knows coloured shapes. Connect to the internet "
            "or put the weights in the cache to use the real model."
        )
        return Workspace(kb, demo, fallback=note)
    return Workspace(kb, settings)


def llm_choice(value: str) -> str | None:
    """The sidebar's LLM text as a ``provider:model`` spec, or None for retrieval-only."""
    value = value.strip()
    return None if not value or value.lower() == NO_LLM else value


def export_secrets(secrets: Mapping[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    """Put API keys from Streamlit secrets (``OPENAI_API_KEY = "…"``) into the environment, unless set there.

    Returns the names exported. Only names ending in ``_API_KEY`` or ``_BASE_URL`` are taken.
    """
    target: Any = os.environ if environ is None else environ
    done = []
    for key, value in secrets.items():
        if isinstance(value, str) and key.endswith(("_API_KEY", "_BASE_URL")) and not target.get(key):
            target[key] = value
            done.append(key)
    return done


def open_llm(spec: str) -> BaseChatModel:
    """The chat model ``spec`` names. Raises ``LLMUnavailableError`` with the reason."""
    from mmrag.langchain.chat_models import load_chat_model

    return load_chat_model(spec)


def query_note(question: str, model_label: str) -> str | None:
    """A note when the question's language needs a multilingual model that is not in use."""
    return language_warning([question], model_label)


def ask(
    kb: KnowledgeBase,
    question: str,
    llm: BaseChatModel | None,
    *,
    k: int = DEFAULT_K,
    modality: str = "all",
    threshold: float = DEFAULT_THRESHOLD,
) -> AnswerStream:
    """Like :func:`mmrag.langchain.answer.stream_answer`, with the sidebar's modality filter and threshold.

    Raises:
        ConfigError: an empty question or a bad option.
        EmptyQueryError: nothing to search for.
    """
    return stream_answer(kb, question, llm, k=k, modality=modality, threshold=threshold)


def similar_images(kb: KnowledgeBase, image: Path, *, k: int = DEFAULT_K) -> list[Hit]:
    """Images that look like ``image`` (a file), best first; the file itself, if indexed, is left out."""
    return find_similar(kb.searcher, image, k=k, exclude=[source_of(image.resolve())]).hits


def classifier(workspace: Workspace) -> ZeroShotClassifier:
    """A zero-shot classifier over the workspace's model (the page caches one per workspace)."""
    return ZeroShotClassifier(workspace.kb.clip, scorer=workspace.kb.searcher.scorer)


def keep_upload(workspace: Workspace, name: str, data: bytes) -> SavedUpload:
    """Check an uploaded image by size and content and keep it in ``MMRAG_HOME/uploads`` (see
    :func:`mmrag.files.uploads.save_upload`).

    Raises:
        UploadError: refused (too large, not an image, can't be written); ImageError: damaged or a bomb.
    """
    settings = workspace.settings
    return save_upload(
        name, data, upload_folder(settings), max_mb=settings.max_upload_mb, max_megapixels=settings.max_megapixels
    )


def parse_labels(text: str) -> list[str]:
    """Labels from "cat, dog; bird" (commas, semicolons or new lines). Raises ConfigError if fewer than two."""
    labels = [part.strip() for part in text.replace(";", ",").replace("\n", ",").split(",") if part.strip()]
    if len(labels) < 2:
        msg = "give at least two labels, separated by commas (e.g. cat, dog)"
        raise ConfigError(msg)
    return labels


def index_paths(workspace: Workspace, paths: list[Path], *, on_progress: ProgressCallback | None = None) -> SyncReport:
    """Add files to the knowledge base (one writer at a time)."""
    with workspace.lock:
        return workspace.kb.add_files(paths, on_progress=on_progress)


def index_folder(
    workspace: Workspace, folder: str, *, on_progress: ProgressCallback | None = None, allow_removal: bool = False
) -> SyncReport:
    """Sync a whole folder given by path into the knowledge base.

    Raises:
        ConfigError: the path is empty or not a folder.
        MassRemovalError: the sync would remove most of what the folder had (the page asks, then passes
            ``allow_removal``).
    """
    path = Path(folder.strip()).expanduser()
    if not folder.strip() or not path.is_dir():
        msg = f"{folder.strip() or 'the path'} is not a folder on the machine running mmrag"
        raise ConfigError(msg)
    with workspace.lock:
        return workspace.kb.sync(path, on_progress=on_progress, allow_removal=allow_removal)


@dataclass(frozen=True)
class GalleryItem:
    id: str
    source: str
    caption: str
    thumbnail: bytes


def gallery(kb: KnowledgeBase, *, contains: str = "", limit: int = 24) -> tuple[list[GalleryItem], int]:
    """Indexed images whose source or caption contains ``contains`` (case-insensitive), with thumbnails.

    Returns up to ``limit`` items, sorted by source, and how many matched in all.
    """
    needle = contains.strip().lower()
    matched = sorted(
        (str(meta.get("source", "")), id_, str(meta.get("caption", "")))
        for id_, meta in kb.store.metadatas(IMAGE).items()
        if not needle or needle in str(meta.get("source", "")).lower() or needle in str(meta.get("caption", "")).lower()
    )
    shown = matched[:limit]
    records = {r.id: r for r in kb.store.get(IMAGE, [id_ for _, id_, _ in shown])}
    items = [
        GalleryItem(id_, source, caption, thumbnail_bytes(records[id_].document) if id_ in records else b"")
        for source, id_, caption in shown
    ]
    return items, len(matched)


def document_sources(kb: KnowledgeBase) -> list[str]:
    """Every indexed file (images and texts), sorted."""
    return sorted({str(meta.get("source", "")) for m in MODALITIES for meta in kb.store.metadatas(m).values()} - {""})


def delete_document(workspace: Workspace, source: str) -> int:
    """Remove one file's documents from the knowledge base (not the file). Returns how many were removed."""
    with workspace.lock:
        return workspace.kb.remove([source])
