"""The LangChain retriever over calibrated search: :class:`MultimodalRetriever` and Hit → Document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from mmrag.defaults import DEFAULT_K, DEFAULT_LAMBDA, DEFAULT_THRESHOLD
from mmrag.errors import ConfigError
from mmrag.files.images import ImageSource
from mmrag.kb.records import IMAGE
from mmrag.search.hits import Hit, Modality, SearchResult
from mmrag.search.query import Query
from mmrag.search.searcher import Searcher


def to_document(hit: Hit) -> Document:
    """A hit as a LangChain Document: the text to read as ``page_content``, the scores in ``metadata``."""
    meta: dict[str, Any] = dict(hit.metadata)
    meta.update(id=hit.id, score=round(hit.relevance, 6), z=round(hit.z, 4), cosine=round(hit.cosine, 6))
    if hit.modality == IMAGE:
        meta.update(path=hit.source, thumbnail=hit.document)
    return Document(id=hit.id, page_content=hit.text, metadata=meta)


class MultimodalRetriever(BaseRetriever):
    """A LangChain retriever over an mmrag knowledge base: images and texts, ranked on one calibrated scale.

    Setup:
        Index a folder first (``mmrag index FOLDER`` or ``kb.sync(folder)``).

    Instantiate:
        .. code-block:: python

            from mmrag import open_knowledge_base

            kb = open_knowledge_base(db="demo-kb")
            retriever = kb.as_retriever(k=6, modality="all")

    Use:
        .. code-block:: python

            docs = retriever.invoke("a cat on a sofa")
            docs[0].metadata["modality"], docs[0].metadata["score"]
            retriever.invoke("a cat", k=3, modality="image")   # per-call options
            retriever.invoke_image(Path("query.jpg"))          # search by image

        In a chain: ``retriever | format_docs | prompt | chat_model``.

    Each Document's ``metadata`` has ``id``, ``modality``, ``source``, ``score`` (calibrated relevance), ``z``
    and ``cosine``; image Documents also have ``path``, ``thumbnail`` (a JPEG data URI) and ``caption``, and
    their ``page_content`` is the caption (or the file name).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: Searcher = Field(exclude=True)
    k: int = DEFAULT_K
    modality: Modality = "all"
    where: dict[str, Any] | None = None
    threshold: float = DEFAULT_THRESHOLD
    mmr: bool = False
    fetch_k: int | None = None
    lambda_mult: float = DEFAULT_LAMBDA

    def _options(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        options = {
            "k": self.k,
            "modality": self.modality,
            "where": self.where,
            "threshold": self.threshold,
            "mmr": self.mmr,
            "fetch_k": self.fetch_k,
            "lambda_mult": self.lambda_mult,
        }
        unknown = set(overrides) - set(options)
        if unknown:
            msg = f"unknown retriever options: {', '.join(sorted(unknown))}"
            raise ConfigError(msg)
        options.update(overrides)
        return options

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        result = self.searcher.search(query, **self._options(kwargs))
        return [to_document(hit) for hit in result.hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._options(kwargs)
        result = await run_in_executor(None, lambda: self.searcher.search(query, **options))
        return [to_document(hit) for hit in result.hits]

    def search(self, query: str | ImageSource | Query, **kwargs: Any) -> SearchResult:
        """The full result (hits, warnings, timings) with this retriever's options."""
        return self.searcher.search(query, **self._options(kwargs))

    def invoke_image(self, image: ImageSource, **kwargs: Any) -> list[Document]:
        """Search by image: similar images and related text."""
        return [to_document(hit) for hit in self.search(Query.image(image), **kwargs).hits]
