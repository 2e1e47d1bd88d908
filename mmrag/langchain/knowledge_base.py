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
    from langchain_core.documents import Document

    from mmrag.kb.pictures import PictureOptions
    from mmrag.langchain.documents_in import AddedDocuments
    from mmrag.langchain.retriever import MultimodalRetriever
    from mmrag.langchain.vectorstore import KnowledgeBaseVectorStore

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
    def from_store(cls, store: Store, *, prior_cache: Path | None = None) -> KnowledgeBase:
        """A knowledge base over a store that is already built (how the composition root makes one).

        Args:
            prior_cache: where the model's measured score scale is kept between processes.
        """
        kb = object.__new__(cls)
        kb._attach(store, prior_cache)
        return kb

    def _attach(self, store: Store, prior_cache: Path | None = None) -> None:
        self.store = store
        self._prior_cache = prior_cache
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
                self._searcher = Searcher(self.store, prior_cache=self._prior_cache)
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

    def add_documents(self, documents: Sequence[Document], *, ids: Sequence[str] | None = None) -> AddedDocuments:
        """Add LangChain Documents (from loaders and splitters) as first-class mmrag records.

        Texts become text records; a Document with ``image_path``, ``image_bytes`` or ``image`` in its metadata
        (or a base64 image as its ``page_content``) becomes an image record with a thumbnail, its
        ``page_content`` the caption. Ids are stable (the Document's ``id``, else a hash of its content), so a
        second add of the same Documents is a no-op. Folder sync leaves these records alone. An image that
        can't be read is skipped and reported; its neighbours are added. See :mod:`mmrag.langchain.documents_in`.

        Raises:
            ConfigError: ``ids`` is not one per Document.
            KnowledgeBaseLockedError: another process is writing to the knowledge base.
        """
        from mmrag.langchain.documents_in import add_documents

        return add_documents(self.store, documents, ids)

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document],
        clip: ClipModel,
        *,
        client: ClientAPI | None = None,
        ids: Sequence[str] | None = None,
        **options: Any,
    ) -> KnowledgeBase:
        """A knowledge base holding ``documents``: in ``client`` (default: an in-memory chromadb client).

        ``options`` are the constructor's (``name``, ``location``, ``lock_path``, ``lock_timeout``).
        """
        if client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
        kb = cls(client, clip, **options)
        kb.add_documents(documents, ids=ids)
        return kb

    def foreign_ids(self) -> dict[str, list[str]]:
        """Per modality, the ids of records another writer put in mmrag's collections (mmrag leaves them alone;
        :meth:`remove_ids` removes them, after which a sync indexes the files themselves)."""
        from mmrag.kb.records import MODALITIES

        return {m: sorted(self.store.foreign_metadatas(m)) for m in MODALITIES}

    def remove(self, paths: Sequence[str | Path]) -> int:
        """Remove the documents of these files, or of every file under these folders. Returns how many."""
        return self.store.remove(paths)

    def remove_ids(self, ids: Sequence[str]) -> int:
        """Remove documents by id. Returns how many existed."""
        return self.store.remove_ids(ids)

    def remove_each(self, paths: Sequence[str | Path] = (), ids: Sequence[str] = ()) -> tuple[int, list[str]]:
        """Remove files', folders' and ids' documents all at once (a kill leaves all or none). Returns how many
        went, and the paths and ids that matched nothing."""
        return self.store.remove_each(paths, ids)

    def drop(self) -> None:
        """Delete both collections: the knowledge base becomes empty and forgets its model."""
        self.store.drop()

    # --- LangChain ---------------------------------------------------------------------------------

    def as_retriever(
        self, *, search_type: str | None = None, search_kwargs: Mapping[str, Any] | None = None, **options: Any
    ) -> MultimodalRetriever:
        """A :class:`~mmrag.langchain.retriever.MultimodalRetriever` over this knowledge base. Retrievers of one
        knowledge base share its caches.

        Options, either mmrag's own (``k``, ``modality``, ``where``, ``threshold``, ``mmr``, ``fetch_k``,
        ``lambda_mult``, and LangChain's ``tags``, ``metadata``) or LangChain's vector-store convention:
        ``search_type="similarity" | "mmr" | "similarity_score_threshold"`` with ``search_kwargs`` (``k``,
        ``filter``, ``fetch_k``, ``lambda_mult``, ``score_threshold``; see
        :func:`~mmrag.langchain.retriever.search_options`). ``k`` means at most ``k``: mmrag's calibrated
        threshold still applies.

        Raises:
            ConfigError: an unknown option, search type or search key, or one option given twice.
        """
        from mmrag.errors import ConfigError
        from mmrag.langchain.retriever import MultimodalRetriever, search_options

        if search_type is not None or search_kwargs is not None:
            mapped = search_options(search_type or "similarity", search_kwargs)
            twice = sorted(set(mapped) & set(options))
            if twice:
                msg = f"{', '.join(twice)} given both directly and through search_kwargs; give each once"
                raise ConfigError(msg)
            options = {**options, **mapped}
        try:
            return MultimodalRetriever(searcher=self.searcher, **options)
        except ValueError as e:  # pydantic: an unknown option or a wrong type
            msg = f"bad retriever options: {e}"
            raise ConfigError(msg) from e

    def as_vectorstore(self) -> KnowledgeBaseVectorStore:
        """The whole knowledge base as one LangChain ``VectorStore`` (mmrag's records in, calibrated search out),
        for LangChain's indexing API; see :mod:`mmrag.langchain.vectorstore`."""
        from mmrag.langchain.vectorstore import KnowledgeBaseVectorStore

        return KnowledgeBaseVectorStore(self)

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
