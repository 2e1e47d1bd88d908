"""The LangChain retriever over calibrated search: :class:`MultimodalRetriever` and Hit → Document.

Documents come out in a shape chains can use as they are (see :func:`to_document`): every one has ``id``,
``modality``, ``source``, ``score`` and ``citation`` in its metadata, so :data:`DOCUMENT_PROMPT` (and
``create_retriever_tool(..., document_prompt=DOCUMENT_PROMPT)``) shows the LLM a modality marker, the id, the
file and the page or chunk beside each text. Records another tool wrote into the collection come out in the same
shape.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from mmrag.defaults import DEFAULT_K, DEFAULT_LAMBDA, DEFAULT_THRESHOLD
from mmrag.errors import ConfigError, MmragError
from mmrag.files.images import ImageSource
from mmrag.kb.records import IMAGE, page_of, page_place
from mmrag.search.hits import Hit, Modality, SearchResult
from mmrag.search.query import Query
from mmrag.search.searcher import Searcher

DOCUMENT_PROMPT = PromptTemplate.from_template("{citation}\n{page_content}")
"""A ``document_prompt`` for ``create_retriever_tool`` and ``format_document``: e.g.
``[image img-1f…] red_circle_01.png`` or ``[text txt-9a…-00002] notes.pdf, page 3`` above the content."""

_IMAGE_SIGNATURES = {"/9j/": "jpeg", "iVBORw0KGgo": "png", "R0lGOD": "gif", "UklGR": "webp"}
"""How base64 image data begins, per format (for thumbnails other tools stored raw)."""


def to_document(hit: Hit) -> Document:
    """A hit as a LangChain Document: the text to read as ``page_content``, the scores in ``metadata``.

    ``metadata`` always has ``id``, ``modality``, ``source``, ``score``, ``z``, ``cosine`` and ``citation``;
    image Documents also ``path``, ``caption`` and ``thumbnail`` (a JPEG or PNG data URI, or ``""``). A record
    another tool wrote (no ``modality``, a raw base64 image as its document…) gets the same keys.
    """
    meta: dict[str, Any] = dict(hit.metadata)
    name = Path(hit.source).name if hit.source else hit.id
    meta.update(hit.identity())
    if hit.modality == IMAGE:
        thumbnail = data_uri(hit.document)
        meta.update(path=hit.source, thumbnail=thumbnail, caption=hit.caption)
        text = hit.caption or f"[image: {name}]"
    else:
        text = hit.document
    meta["citation"] = citation(hit.id, hit.modality, name, meta)
    return Document(id=hit.id, page_content=text, metadata=meta)


def citation(id_: str, modality: str, name: str, meta: Mapping[str, Any]) -> str:
    """``[modality id] file`` and, for a text, its page (PDFs) or its chunk: what a chain shows beside a text."""
    where = ""
    page = page_of(meta)
    if page is not None:
        where = f", {page_place(name, page)}"
    elif modality != IMAGE and isinstance(meta.get("chunks"), int) and int(meta["chunks"]) > 1:
        where = f", chunk {int(meta.get('chunk', 0)) + 1} of {meta['chunks']}"
    return f"[{modality} {id_}] {name}{where}"


def data_uri(document: str) -> str:
    """An image record's document as a data URI: mmrag's own thumbnail as it is, another tool's raw base64
    image (``Chroma.add_images`` stores one) with its type, and anything else as ``""``."""
    if document.startswith("data:image/"):
        return document
    for signature, kind in _IMAGE_SIGNATURES.items():
        if document.startswith(signature):
            return f"data:image/{kind};base64,{document}"
    return ""


def format_documents(documents: Sequence[Document]) -> str:
    """The documents as one text for a prompt, each under its :data:`DOCUMENT_PROMPT` header."""
    from langchain_core.prompts import format_document

    return "\n\n".join(format_document(d, DOCUMENT_PROMPT) for d in documents)


def base64_image_documents(documents: Sequence[Document], *, max_side: int = 512) -> list[Document]:
    """Image Documents with the image itself as base64 ``page_content``, the shape LangChain's multimodal
    cookbook (``split_image_text_types``) looks for; texts are kept as they are.

    The image is read from its file and downscaled to ``max_side`` pixels (JPEG); a file that can't be read
    falls back to the stored thumbnail, and a record with neither keeps its text.
    """
    from mmrag.files.images import load_image
    from mmrag.files.thumbnails import thumbnail_data_uri

    out = []
    for doc in documents:
        if doc.metadata.get("modality") != IMAGE:
            out.append(doc)
            continue
        uri = str(doc.metadata.get("thumbnail", ""))
        path = str(doc.metadata.get("path", ""))
        if path:
            with contextlib.suppress(MmragError):  # unreadable now: the stored thumbnail
                uri = thumbnail_data_uri(load_image(Path(path), min_side=max_side), max_side=max_side, quality=85)
        payload = uri.split(",", 1)[1] if uri.startswith("data:image/") else ""
        out.append(Document(id=doc.id, page_content=payload or doc.page_content, metadata=dict(doc.metadata)))
    return out


ResultCallback = Callable[[SearchResult], None]

SEARCH_TYPES = ("similarity", "mmr", "similarity_score_threshold")
_COMMON_KWARGS = {
    "k": "k",
    "filter": "where",
    "where": "where",
    "modality": "modality",
    "threshold": "threshold",
    "keywords": "keywords",
}
_TYPE_KWARGS = {
    "similarity": {},
    "mmr": {"fetch_k": "fetch_k", "lambda_mult": "lambda_mult"},
    "similarity_score_threshold": {"score_threshold": "threshold"},
}


def search_options(search_type: str, search_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """LangChain's ``as_retriever(search_type=…, search_kwargs=…)`` as :class:`MultimodalRetriever` options.

    ``similarity``: ``k``, ``filter``; ``mmr``: also ``fetch_k``, ``lambda_mult``; ``similarity_score_threshold``:
    also ``score_threshold`` (mmrag's relevance, a probability 0 to 1). mmrag's own ``where``, ``modality`` and
    ``threshold`` are accepted under every type. ``k`` is always "at most k": mmrag's threshold still applies.

    Raises:
        ConfigError: an unknown search type, or a key that type doesn't take (nothing is silently ignored).
    """
    if search_type not in SEARCH_TYPES:
        msg = f"unknown search_type {search_type!r}; use one of {', '.join(SEARCH_TYPES)}"
        raise ConfigError(msg)
    allowed = {**_COMMON_KWARGS, **_TYPE_KWARGS[search_type]}
    kwargs = dict(search_kwargs or {})
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        msg = (
            f"search_kwargs {', '.join(unknown)} can't be used with search_type={search_type!r}; it takes "
            f"{', '.join(sorted(allowed))}"
        )
        raise ConfigError(msg)
    options: dict[str, Any] = {}
    for key, value in kwargs.items():
        name = allowed[key]
        if name in options:
            msg = f"search_kwargs gives {name} twice ({', '.join(k for k in kwargs if allowed[k] == name)})"
            raise ConfigError(msg)
        options[name] = value
    if search_type == "similarity_score_threshold" and "threshold" not in options:
        msg = "search_type='similarity_score_threshold' needs search_kwargs={'score_threshold': 0..1}"
        raise ConfigError(msg)
    if search_type == "mmr":
        options["mmr"] = True
    return options


class MultimodalRetriever(BaseRetriever):
    """A LangChain retriever over an mmrag knowledge base: images and texts, ranked on one calibrated scale.

    Setup:
        Index a folder first (``mmrag index FOLDER`` or ``kb.sync(folder)``).

    Instantiate:
        .. code-block:: python

            from mmrag import open_knowledge_base

            kb = open_knowledge_base(db="demo-kb")
            retriever = kb.as_retriever(k=6, modality="all")
            retriever = kb.as_retriever(search_type="mmr", search_kwargs={"k": 6, "fetch_k": 30})

    Use:
        .. code-block:: python

            docs = retriever.invoke("a cat on a sofa")
            docs[0].metadata["modality"], docs[0].metadata["score"]
            retriever.invoke("a cat", k=3, modality="image")   # per-call options
            retriever.invoke_image(Path("query.jpg"))          # search by image

        In a chain: ``retriever | format_documents | prompt | chat_model``.

    ``k`` means at most ``k``: hits below ``threshold`` (calibrated relevance) are left out, so fewer, or none,
    may come back. Each Document's ``metadata`` has ``id``, ``modality``, ``source``, ``score`` (calibrated
    relevance), ``z``, ``cosine`` and ``citation``; image Documents also have ``path``, ``thumbnail`` (a JPEG
    data URI) and ``caption``, and their ``page_content`` is the caption (or the file name). Unknown options
    raise :class:`~mmrag.errors.ConfigError`. ``invoke(query, on_result=f)`` also hands the whole
    :class:`~mmrag.search.hits.SearchResult` (warnings, timings) to ``f``; the answer chain uses it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    searcher: Searcher = Field(exclude=True)
    k: int = DEFAULT_K
    modality: Modality = "all"
    where: dict[str, Any] | None = None
    threshold: float = DEFAULT_THRESHOLD
    mmr: bool = False
    fetch_k: int | None = None
    lambda_mult: float = DEFAULT_LAMBDA
    keywords: bool = True

    def _options(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        options = {
            "k": self.k,
            "modality": self.modality,
            "where": self.where,
            "threshold": self.threshold,
            "mmr": self.mmr,
            "fetch_k": self.fetch_k,
            "lambda_mult": self.lambda_mult,
            "keywords": self.keywords,
        }
        unknown = set(overrides) - set(options)
        if unknown:
            msg = f"unknown retriever options: {', '.join(sorted(unknown))} (it takes {', '.join(options)})"
            raise ConfigError(msg)
        options.update(overrides)
        return options

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        on_result: ResultCallback | None = kwargs.pop("on_result", None)
        result = self.searcher.search(query, **self._options(kwargs))
        if on_result is not None:
            on_result(result)
        return [to_document(hit) for hit in result.hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        on_result: ResultCallback | None = kwargs.pop("on_result", None)
        options = self._options(kwargs)
        result = await run_in_executor(None, lambda: self.searcher.search(query, **options))
        if on_result is not None:
            on_result(result)
        return [to_document(hit) for hit in result.hits]

    def search(self, query: str | ImageSource | Query, **kwargs: Any) -> SearchResult:
        """The full result (hits, warnings, timings) with this retriever's options."""
        return self.searcher.search(query, **self._options(kwargs))

    def invoke_image(self, image: ImageSource, **kwargs: Any) -> list[Document]:
        """Search by image: similar images and related text."""
        return [to_document(hit) for hit in self.search(Query.image(image), **kwargs).hits]
