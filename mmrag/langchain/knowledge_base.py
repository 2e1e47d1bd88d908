"""The knowledge base: one facade over the store, folder sync and calibrated search, with LangChain faces.

:class:`KnowledgeBase` puts the layers below together: a :class:`~mmrag.kb.store.Store` (collections, model
record, reads, writes, the lock), :mod:`mmrag.kb.sync` (folders and files in), and a
:class:`~mmrag.search.searcher.Searcher` (calibrated queries out). None of those knows about this class, and
the LangChain objects it hands out (:meth:`KnowledgeBase.as_retriever`, :meth:`KnowledgeBase.as_vectorstores`)
are imported only when asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.kb.records import ModelRecord
from mmrag.kb.report import ProgressCallback, SyncReport
from mmrag.kb.store import Counts, Store
from mmrag.model.clip import ClipModel
from mmrag.search.searcher import Searcher

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from langchain_chroma import Chroma

    from mmrag.kb.pictures import PictureOptions
    from mmrag.langchain.retriever import MultimodalRetriever

UserMetadata = Mapping[str, str | int | float | bool]


class KnowledgeBase:
    """Images and texts embedded with one CLIP model, in Chroma, kept in sync with folders.

    Setup:
        Build it with :func:`mmrag.open_knowledge_base` (embedded Chroma in ``--db`` / ``MMRAG_DB``, or a
        ``chroma run`` server at ``--chroma-url`` / ``MMRAG_CHROMA_URL``).

    Instantiate:
        .. code-block:: python

            import chromadb
            from mmrag import ClipModel, KnowledgeBase

            kb = KnowledgeBase(chromadb.PersistentClient("kb"), ClipModel("toy"), location="kb")

    Use:
        .. code-block:: python

            report = kb.sync("photos/")  # add new, re-embed changed, drop deleted, follow renames
            kb.counts()
            docs = kb.as_retriever(k=4).invoke("a red circle")
            stores = kb.as_vectorstores()  # langchain_chroma.Chroma per modality

    Args:
        client: a chromadb client (``PersistentClient`` or ``HttpClient``).
        clip: the embedding model; it must match the one the knowledge base records.
        name: the knowledge base's name inside Chroma.
        location: where it lives, for messages (a directory or a URL).
        lock_path: a lock file for embedded stores (None for a server).
        lock_timeout: seconds a writer waits for another writer before giving up.
    """

    def __init__(
        self,
        client: ClientAPI,
        clip: ClipModel,
        *,
        name: str = "mmrag",
        location: str = "",
        lock_path: Path | None = None,
        lock_timeout: float = 10.0,
    ) -> None:
        self._attach(Store(client, clip, name=name, location=location, lock_path=lock_path, lock_timeout=lock_timeout))

    @classmethod
    def from_store(cls, store: Store) -> KnowledgeBase:
        """A knowledge base over a store that is already built (how the composition root makes one)."""
        kb = object.__new__(cls)
        kb._attach(store)
        return kb

    def _attach(self, store: Store) -> None:
        self.store = store
        self.pictures: PictureOptions | None = None
        """PDF figures and pages, and OCR, for its syncs (None: OCR where the engine is installed)."""
        self._searcher: Searcher | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KnowledgeBase({self.location!r}, name={self.name!r}, model={self.clip.model_name!r})"

    @property
    def clip(self) -> ClipModel:
        return self.store.clip

    @property
    def name(self) -> str:
        return self.store.name

    @property
    def location(self) -> str:
        return self.store.location

    @property
    def model_record(self) -> ModelRecord | None:
        """The model the knowledge base was built with (None while it is empty)."""
        return self.store.model_record

    @property
    def searcher(self) -> Searcher:
        """The calibrated searcher; its caches (query texts, calibration samples) are shared by every retriever."""
        with self._lock:
            if self._searcher is None:
                self._searcher = Searcher(self.store)
            return self._searcher

    def check_model(self) -> None:
        """Raise :class:`~mmrag.errors.ModelMismatchError` if the knowledge base was built with another model."""
        self.store.check_model()

    def counts(self) -> Counts:
        """How many images, text chunks and text files it holds."""
        return self.store.counts()

    # --- writing -----------------------------------------------------------------------------------

    def sync(
        self,
        folder: str | Path,
        *,
        metadata: UserMetadata | None = None,
        on_progress: ProgressCallback | None = None,
        allow_removal: bool = False,
        force: bool = False,
    ) -> SyncReport:
        """Make the knowledge base match ``folder``; see :func:`mmrag.kb.sync.sync_folder`.

        A sync that would remove most of what the folder had stops before changing anything
        (:class:`~mmrag.errors.MassRemovalError`) unless ``allow_removal``; ``/``, system folders and the home
        folder itself are refused (:class:`~mmrag.errors.FolderRefusedError`) unless ``force``.
        """
        from mmrag.kb.sync import sync_folder

        return sync_folder(
            self.store,
            Path(folder),
            metadata=metadata,
            on_progress=on_progress,
            allow_removal=allow_removal,
            force=force,
            pictures=self.pictures,
        )

    def add_files(
        self,
        paths: Sequence[str | Path],
        *,
        metadata: UserMetadata | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> SyncReport:
        """Add or refresh individual files (nothing else is removed); see :func:`mmrag.kb.sync.sync_files`."""
        from mmrag.kb.sync import sync_files

        return sync_files(
            self.store, [Path(p) for p in paths], metadata=metadata, on_progress=on_progress, pictures=self.pictures
        )

    def remove(self, paths: Sequence[str | Path]) -> int:
        """Remove the documents of these files, or of every file under these folders. Returns how many."""
        return self.store.remove(paths)

    def remove_ids(self, ids: Sequence[str]) -> int:
        """Remove documents by id. Returns how many existed."""
        return self.store.remove_ids(ids)

    def drop(self) -> None:
        """Delete both collections: the knowledge base becomes empty and forgets its model."""
        self.store.drop()

    # --- LangChain ---------------------------------------------------------------------------------

    def as_retriever(self, **options: Any) -> MultimodalRetriever:
        """A :class:`~mmrag.langchain.retriever.MultimodalRetriever` over this knowledge base (k, modality,
        where, threshold, mmr, fetch_k, lambda_mult). Retrievers of one knowledge base share its caches."""
        from mmrag.langchain.retriever import MultimodalRetriever

        return MultimodalRetriever(searcher=self.searcher, **options)

    def as_vectorstores(self) -> dict[str, Chroma]:
        """Each modality's collection as a ``langchain_chroma.Chroma`` using this model's embeddings."""
        from langchain_chroma import Chroma

        from mmrag.kb.records import MODALITIES
        from mmrag.langchain.embeddings import ClipEmbeddings

        embeddings = ClipEmbeddings(clip=self.clip)
        return {
            modality: Chroma(
                collection_name=self.store.collection_name(modality),
                embedding_function=embeddings,
                client=self.store.client,
                collection_metadata=dict(self.store.collection(modality).metadata or {}),
            )
            for modality in MODALITIES
        }
