"""The UI's only door into mmrag: what the chat page does, as plain functions and the types it shows.

Open the knowledge base (falling back visibly to the toy demo; never creating a store the user only typed),
load the chat model, answer with the sidebar's options, write answers for the page (:mod:`mmrag.ui.answer_text`),
suggest example questions (:mod:`mmrag.ui.examples`), search by image, classify and match uploads, keep uploads,
index, browse a page of the gallery, and delete.

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
from mmrag.errors import (
    ConfigError,
    LLMUnavailableError,
    MassRemovalError,
    MmragError,
    ModelUnavailableError,
    NoKnowledgeBaseError,
)
from mmrag.factory import build_clip, demo_settings, offline_settings, open_knowledge_base
from mmrag.files.paths import source_of
from mmrag.files.thumbnails import thumbnail_bytes
from mmrag.files.uploads import UPLOAD_TYPES, SavedUpload, save_upload, upload_folder
from mmrag.kb.client import check_database
from mmrag.kb.records import IMAGE, MODALITIES, TEXT, page_place
from mmrag.kb.report import ProgressCallback, Skipped, SyncProgress, SyncReport
from mmrag.langchain.answer import Answer, AnswerImage, AnswerSource, AnswerStream, stream_answer
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.language import is_multilingual, language_warning
from mmrag.search.hits import Hit
from mmrag.search.similar import similar_images as find_similar
from mmrag.search.zeroshot import Classification, Match, ZeroShotClassifier
from mmrag.toy import TOY_MODEL_NAME
from mmrag.ui.answer_text import LLMStatus, answer_markdown, image_anchor, short_name
from mmrag.ui.examples import example_questions

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
    "GalleryPage",
    "Hit",
    "LLMStatus",
    "LLMUnavailableError",
    "MassRemovalError",
    "Match",
    "MmragError",
    "NoKnowledgeBaseError",
    "SavedUpload",
    "Skipped",
    "SyncProgress",
    "SyncReport",
    "Workspace",
    "ZeroShotClassifier",
    "answer_markdown",
    "ask",
    "classifier",
    "delete_document",
    "document_sources",
    "example_questions",
    "export_secrets",
    "gallery",
    "image_anchor",
    "index_folder",
    "index_paths",
    "keep_upload",
    "language_note",
    "llm_choice",
    "open_llm",
    "open_workspace",
    "page_place",
    "parse_labels",
    "plural",
    "query_note",
    "removed_message",
    "require_store",
    "settings_for",
    "short_name",
    "similar_images",
    "split_location",
    "store_exists",
    "thumbnail_bytes",
]

NO_LLM = "none"
"""The LLM choice that means retrieval-only answers."""
DEMO_PER_CLASS = 2
MAX_UI_K = 20
"""The k slider's upper end."""
GALLERY_PAGE = 24
"""Images on one page of the gallery."""


@dataclass
class Workspace:
    """The knowledge base the UI works on, the settings that opened it, and why it is the demo, if it is.

    ``fallback`` is a one-line banner when the configured model could not load and the toy demo is shown
    instead, and ``fallback_detail`` the reason in full; ``created`` says that opening made a new, empty store.
    ``lock`` serialises writes (indexing, deleting) from the UI's sessions, which share one workspace.
    """

    kb: KnowledgeBase
    settings: Settings
    fallback: str | None = None
    fallback_detail: str | None = None
    created: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def model_label(self) -> str:
        return self.kb.clip.label

    @property
    def model_name(self) -> str:
        """The model in use, as the sidebar's model field takes it (``toy``, ``ViT-B-32``, ``local-dir:…``)."""
        return self.kb.clip.model_name

    @property
    def where(self) -> str:
        """The store in use, as the sidebar's knowledge-base field takes it: a directory or a server URL."""
        return self.settings.chroma_url or str(self.settings.db_path)

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


def split_location(where: str) -> tuple[str, str]:
    """The sidebar's knowledge-base text as ``(db, chroma_url)``: a URL names a server, anything else a directory."""
    where = where.strip()
    return ("", where) if where.startswith(("http://", "https://")) else (where, "")


def store_exists(settings: Settings) -> bool:
    """Whether the settings' store holds a knowledge base already (a server always counts: it is not created).

    Raises:
        CorruptStoreError: the embedded database file is damaged.
    """
    if settings.chroma_url:
        return True
    try:
        check_database(settings.db_path, create=False)
    except NoKnowledgeBaseError:
        return False
    return True


def require_store(settings: Settings) -> None:
    """Refuse a store that holds no knowledge base yet, so that a typed path never creates one.

    Raises:
        NoKnowledgeBaseError: the directory holds no knowledge base (the message names it; nothing is made).
        CorruptStoreError: its database file is damaged.
    """
    if not settings.chroma_url:
        check_database(settings.db_path, create=False)


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


def open_workspace(settings: Settings, *, create: bool = True) -> Workspace:
    """Open the knowledge base and load its model; if the weights can't be had, the toy demo instead.

    The fallback is visible: :attr:`Workspace.fallback` is a short banner and :attr:`Workspace.fallback_detail`
    the reason. A new store is made only with ``create``, and only once its model has loaded (so going offline
    leaves no empty store behind); :attr:`Workspace.created` then says so.

    Raises:
        NoKnowledgeBaseError: ``create`` is False and the directory holds no knowledge base (nothing is made).
        ModelMismatchError, StoreError, ModelError, ConfigError: as :func:`~mmrag.factory.open_knowledge_base`.
    """
    exists = store_exists(settings)
    if not create:
        require_store(settings)
    try:
        if exists or not create:
            kb = open_knowledge_base(settings, create=False)
            kb.clip.load()
        else:
            clip = build_clip(settings)
            clip.load()
            kb = open_knowledge_base(settings, clip=clip)
    except ModelUnavailableError as e:
        return fallback_workspace(settings, e)
    return Workspace(kb, settings, created=not exists)


OFFLINE_BANNER = "Offline, on the toy model: captions, file names and notes are searched; photos need real weights."


def fallback_workspace(settings: Settings, reason: ModelUnavailableError) -> Workspace:
    """The offline workspace shown when the configured model's weights can't be had.

    A folder indexed offline (``mmrag ui --index FOLDER`` indexes it with the toy model into ``home/offline/kb``)
    is shown if there is one: its captions, file names and notes work through the keyword channel, and the toy's
    CLIP channel abstains on words it doesn't know. Otherwise the toy model's demo of coloured shapes.
    """
    offline = offline_settings(settings)
    if store_exists(offline):
        kb = open_knowledge_base(offline, create=False)
        if kb.counts().images + kb.counts().text_chunks > 0:
            detail = (
                f"{reason}. This is {kb.location}, indexed with the toy model, which knows only coloured shapes: "
                "a query with other words is answered from the words of captions, file names and notes, and the "
                "toy's image search stays silent rather than guessing. To use the real model, connect to the "
                "internet or put its weights in the Hugging Face cache, then reload."
            )
            return Workspace(kb, offline, fallback=OFFLINE_BANNER, fallback_detail=detail)
    demo = demo_workspace_settings(settings)
    kb = ensure_demo(settings)
    banner = f"Offline: {settings.model_name} is not available, so this is the toy model's demo of coloured shapes."
    detail = (
        f"{reason}. The demo knowledge base is {kb.location}. To use the real model, connect to the internet or "
        "put its weights in the Hugging Face cache, then reload."
    )
    return Workspace(kb, demo, fallback=banner, fallback_detail=detail)


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


def language_note(model_label: str) -> str | None:
    """The sidebar's note on which languages the model reads (None for a multilingual model)."""
    if is_multilingual(model_label):
        return None
    if model_label == TOY_MODEL_NAME:
        return "The toy model reads English and Chinese only; a note appears when a question is in another language."
    return "This model reads English only; a note appears when a question needs a multilingual model."


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


@dataclass(frozen=True)
class GalleryPage:
    """One page of the gallery: its items, how many images matched in all, and which page this is (from 0)."""

    items: list[GalleryItem]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        """The 1-based number of the page's first image (0 when nothing matched)."""
        return self.page * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.page * self.per_page + len(self.items)

    def summary(self) -> str:
        """E.g. "71 images match; showing 25–48 (page 2 of 3)."."""
        matched = f"{self.total} {plural(self.total, 'image')} {'match' if self.total != 1 else 'matches'}"
        if not self.items:
            return f"{matched}."
        return f"{matched}; showing {self.first}–{self.last} (page {self.page + 1} of {self.pages})."


def gallery(kb: KnowledgeBase, *, contains: str = "", page: int = 0, per_page: int = GALLERY_PAGE) -> GalleryPage:
    """Indexed images whose source or caption contains ``contains`` (case-insensitive), with thumbnails.

    Sorted by source, ``per_page`` at a time; a page past the end shows the last one.
    """
    needle = contains.strip().lower()
    matched = sorted(
        (str(meta.get("source", "")), id_, str(meta.get("caption", "")))
        for id_, meta in kb.store.metadatas(IMAGE).items()
        if not needle or needle in str(meta.get("source", "")).lower() or needle in str(meta.get("caption", "")).lower()
    )
    last_page = max(0, (len(matched) - 1) // per_page)
    page = min(max(0, page), last_page)
    shown = matched[page * per_page : (page + 1) * per_page]
    records = {r.id: r for r in kb.store.get(IMAGE, [id_ for _, id_, _ in shown])}
    items = [
        GalleryItem(id_, source, caption, thumbnail_bytes(records[id_].document) if id_ in records else b"")
        for source, id_, caption in shown
    ]
    return GalleryPage(items, len(matched), page, per_page)


def document_sources(kb: KnowledgeBase) -> list[str]:
    """Every indexed file (images and texts), sorted."""
    return sorted({str(meta.get("source", "")) for m in MODALITIES for meta in kb.store.metadatas(m).values()} - {""})


def delete_document(workspace: Workspace, source: str) -> int:
    """Remove one file's documents from the knowledge base (not the file). Returns how many were removed."""
    with workspace.lock:
        return workspace.kb.remove([source])


def plural(n: int, noun: str) -> str:
    """``noun`` for one, ``noun + "s"`` for any other count (the UI's nouns are regular)."""
    return noun if n == 1 else f"{noun}s"


def removed_message(removed: int, source: str) -> str:
    """What the page says after a delete, e.g. "Removed 1 document of red_circle_01.png (the file is untouched)."."""
    name = short_name(source)
    if removed == 0:
        return f"Nothing of {name} was in the knowledge base; nothing was removed."
    return f"Removed {removed} {plural(removed, 'document')} of {name} from the knowledge base; the file is untouched."
