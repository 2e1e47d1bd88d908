"""A knowledge base as one LangChain ``VectorStore``, for LangChain's indexing API (``index()``).

:class:`KnowledgeBaseVectorStore` writes through :meth:`KnowledgeBase.add_documents` (mmrag's record schema:
modality, source, thumbnail, the owner marker) and deletes by id, so ``index(docs, record_manager, store,
cleanup="incremental")`` keeps a knowledge base in step with a loader. Searches go through mmrag's calibrated
retriever (images and texts on one scale). For plain per-modality access to the collections, use
:meth:`KnowledgeBase.as_vectorstores` (``langchain_chroma.Chroma``) instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from mmrag.errors import ConfigError
from mmrag.kb.records import MODALITIES

if TYPE_CHECKING:
    from mmrag.kb.store import Store
    from mmrag.langchain.documents_in import AddedDocuments
    from mmrag.langchain.retriever import MultimodalRetriever
    from mmrag.model.clip import ClipModel


class KnowledgeBaseLike(Protocol):
    """What the vector store needs of a :class:`~mmrag.langchain.knowledge_base.KnowledgeBase` (which imports
    this module, so it is named by its shape here)."""

    store: Store

    @property
    def clip(self) -> ClipModel: ...

    def add_documents(self, documents: Sequence[Document], *, ids: Sequence[str] | None = None) -> AddedDocuments: ...

    def remove_ids(self, ids: Sequence[str]) -> int: ...

    def as_retriever(self, **options: Any) -> MultimodalRetriever: ...


class KnowledgeBaseVectorStore(VectorStore):
    """An mmrag knowledge base behind LangChain's ``VectorStore`` interface.

    Instantiate:
        .. code-block:: python

            store = kb.as_vectorstore()

    Use:
        .. code-block:: python

            from langchain_core.indexing import InMemoryRecordManager, index

            manager = InMemoryRecordManager("mmrag/docs")
            manager.create_schema()
            index(docs, manager, store, cleanup="incremental", source_id_key="source")

    Args:
        kb: the knowledge base.
    """

    def __init__(self, kb: KnowledgeBaseLike) -> None:
        self.kb = kb

    @property
    def embeddings(self) -> Embeddings:
        from mmrag.langchain.embeddings import ClipEmbeddings

        return ClipEmbeddings(clip=self.kb.clip)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Add Documents as mmrag records (``ids=`` optional); returns the ids of those written or already there.

        Raises:
            ConfigError: an option other than ``ids`` or ``batch_size``.
        """
        ids = kwargs.pop("ids", None)
        kwargs.pop("batch_size", None)
        if kwargs:
            msg = f"unknown add_documents options: {', '.join(sorted(kwargs))}"
            raise ConfigError(msg)
        report = self.kb.add_documents(documents, ids=ids)
        return [id_ for id_ in report.ids if id_ is not None]

    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> list[str]:
        texts = list(texts)
        metas = metadatas or [{} for _ in texts]
        ids = kwargs.pop("ids", None)
        docs = [Document(page_content=t, metadata=m) for t, m in zip(texts, metas, strict=True)]
        return self.add_documents(docs, ids=ids, **kwargs)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if ids is None:
            msg = "give the ids to delete; to empty the knowledge base use KnowledgeBase.drop()"
            raise ConfigError(msg)
        self.kb.remove_ids(ids)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        out = []
        for modality in MODALITIES:
            for record in self.kb.store.get(modality, ids):
                content = str(record.metadata.get("caption", "")) if modality == "image" else record.document
                out.append(Document(id=record.id, page_content=content, metadata=dict(record.metadata)))
        return out

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """mmrag's calibrated search: at most ``k`` documents above the threshold (``filter`` is ``where``)."""
        if "filter" in kwargs:
            kwargs["where"] = kwargs.pop("filter")
        return self.kb.as_retriever(k=k, **kwargs).invoke(query)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> KnowledgeBaseVectorStore:
        msg = (
            "make the knowledge base first (mmrag.open_knowledge_base or KnowledgeBase.from_documents), then "
            "use kb.as_vectorstore()"
        )
        raise ConfigError(msg)
