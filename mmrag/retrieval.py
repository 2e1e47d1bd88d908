"""Calibrated mixed image+text retrieval, and the LangChain retriever over it.

One query (text, image, or a weighted combination) is embedded once, each modality's collection is searched
for candidates, each candidate gets a calibrated score (see :mod:`mmrag.calibration`), and the candidates
are merged by that score, filtered by a relevance threshold, optionally diversified (MMR), and cut to k.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from mmrag.calibration import Calibrator, normal_cdf, robust_z
from mmrag.clip import Matrix
from mmrag.errors import ConfigError
from mmrag.images import ImageSource
from mmrag.language import language_warning
from mmrag.query import Query, QueryEncoder
from mmrag.store import IMAGE, MODALITIES, TEXT, KnowledgeBase, Metadata, stored_metadata

Modality = Literal["all", "image", "text"]
DEFAULT_K = 6
DEFAULT_THRESHOLD = 0.8
"""Keep hits closer to the query than 80% of their own modality's documents (relevance = Φ(z) ≥ 0.8)."""
MIN_CANDIDATES = 32


@dataclass(frozen=True)
class Hit:
    """One retrieved document with its raw and calibrated scores.

    Attributes:
        cosine: the raw cosine similarity to the query (not comparable across modalities).
        z: how many robust standard deviations above its modality's typical score for this query.
        relevance: Φ(z), between 0 and 1 and comparable across modalities: the ranking score.
        document: the chunk's text, or an image's thumbnail data URI.
    """

    id: str
    modality: str
    source: str
    cosine: float
    z: float
    relevance: float
    document: str
    metadata: Metadata
    embedding: Matrix | None = None

    @property
    def caption(self) -> str:
        return str(self.metadata.get("caption", ""))

    @property
    def text(self) -> str:
        """What a language model should read: the chunk, or the image's caption or file name."""
        if self.modality == TEXT:
            return self.document
        return self.caption or f"[image: {Path(self.source).name}]"

    def to_document(self) -> Document:
        meta: dict[str, Any] = dict(self.metadata)
        meta.update(id=self.id, score=round(self.relevance, 6), z=round(self.z, 4), cosine=round(self.cosine, 6))
        if self.modality == IMAGE:
            meta.update(path=self.source, thumbnail=self.document)
        return Document(id=self.id, page_content=self.text, metadata=meta)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "modality": self.modality,
            "source": self.source,
            "score": round(self.relevance, 6),
            "z": round(self.z, 4),
            "cosine": round(self.cosine, 6),
        }
        if self.modality == TEXT:
            data.update(content=self.document, chunk=self.metadata.get("chunk"))
        else:
            data.update(caption=self.caption)
        return data


@dataclass
class SearchResult:
    """Hits, best first, with warnings (e.g. the query's language) and where the time went (seconds)."""

    hits: list[Hit]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Searcher:
    """Searches a knowledge base with calibrated, mixed-modality scores.

    Args:
        kb: the knowledge base.
        encoder: query encoder (with its text cache); one is made if not given.
        calibrator: per-modality calibration; one is made if not given.
    """

    def __init__(
        self, kb: KnowledgeBase, *, encoder: QueryEncoder | None = None, calibrator: Calibrator | None = None
    ) -> None:
        self.kb = kb
        self.encoder = encoder or QueryEncoder(kb.clip)
        self.calibrator = calibrator or Calibrator(kb)

    def search(
        self,
        query: str | ImageSource | Query,
        *,
        k: int = DEFAULT_K,
        modality: Modality = "all",
        where: Mapping[str, Any] | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        mmr: bool = False,
        fetch_k: int | None = None,
        lambda_mult: float = 0.5,
    ) -> SearchResult:
        """The k best documents for ``query``.

        Args:
            query: a text, an image (path object, bytes or PIL image), or a :class:`Query`.
            k: how many hits at most.
            modality: ``all``, ``image`` or ``text``.
            where: a Chroma metadata filter, e.g. ``{"project": "demo"}``.
            threshold: minimum calibrated relevance (0 keeps everything).
            mmr: diversify with maximal marginal relevance over ``fetch_k`` candidates.
            fetch_k: MMR's candidates per modality (default: max(4k, 32)); without MMR each modality's top k.
            lambda_mult: MMR's trade-off: 1 is pure relevance, 0 pure diversity.

        Raises:
            ConfigError: a bad option value.
            EmptyQueryError: the query has no terms.
            ImageError: an image in the query can't be read.
        """
        _check(k, modality, threshold, lambda_mult)
        q = Query.of(query)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        vector = self.encoder.vector(q)
        timings["encode"] = time.perf_counter() - start

        start = time.perf_counter()
        wanted = MODALITIES if modality == "all" else (modality,)
        # Without MMR, each modality's top k is enough: within a modality the calibrated score follows the
        # cosine, so the fused top k (and the quota's best of a modality) always come from those.
        n = (fetch_k or max(4 * k, MIN_CANDIDATES)) if mmr else k
        futures = {m: _pool().submit(self._candidates, m, vector, n, where, mmr) for m in wanted}
        stats = {m: self.calibrator.centre_and_spread(m, vector) for m in wanted}  # while Chroma searches
        raw = {m: f.result() for m, f in futures.items()}
        timings["search"] = time.perf_counter() - start

        start = time.perf_counter()
        hits = [hit for m in wanted for hit in _calibrated(m, raw[m], *stats[m])]
        hits.sort(key=lambda h: h.z, reverse=True)
        hits = [h for h in hits if h.relevance >= threshold]
        chosen = _mmr(hits, k, lambda_mult) if mmr else hits[:k]
        hits = with_each_modality(chosen, hits)
        timings["fuse"] = time.perf_counter() - start

        start = time.perf_counter()
        if mmr:  # MMR searched many candidates with their vectors: fetch the documents of the chosen only
            hits = self._with_documents(hits)
        timings["fetch"] = time.perf_counter() - start
        warning = language_warning(q.texts, self.kb.clip.label)
        return SearchResult(hits, [warning] if warning else [], timings)

    def _candidates(
        self, modality: str, vector: Matrix, n: int, where: Mapping[str, Any] | None, with_embeddings: bool
    ) -> dict[str, Any]:
        if self.kb.count(modality) == 0:
            return {"ids": [[]]}
        include: list[Any] = ["distances"] + (["embeddings"] if with_embeddings else ["metadatas", "documents"])
        return dict(
            self.kb.collection(modality).query(
                query_embeddings=[vector.tolist()],
                n_results=n,  # Chroma returns fewer when the collection (or the filter) has fewer
                where=dict(where) if where else None,
                include=include,
            )
        )

    def _with_documents(self, hits: list[Hit]) -> list[Hit]:
        """Fill in the chosen hits' documents and metadata (a hit deleted meanwhile is dropped).

        MMR's candidates are searched for ids, distances and vectors only: fetching documents (image
        thumbnails are several KB each) for every candidate costs more than the search, and only k are kept.
        """
        wanted: dict[str, list[str]] = {}
        for hit in hits:
            wanted.setdefault(hit.modality, []).append(hit.id)
        futures = [_pool().submit(self.kb.get, modality, ids) for modality, ids in wanted.items()]
        records = {r.id: r for f in futures for r in f.result()}
        return [
            replace(hit, source=str(r.metadata.get("source", "")), document=r.document, metadata=r.metadata)
            for hit in hits
            if (r := records.get(hit.id)) is not None
        ]


def _calibrated(modality: str, raw: Mapping[str, Any], centre: float, spread: float) -> list[Hit]:
    """Candidates as hits scored against their modality's centre and spread (with documents if searched)."""
    ids = raw["ids"][0] if raw.get("ids") else []
    cosines = 1.0 - np.asarray(raw["distances"][0] if ids else [], dtype=np.float32)
    zs = robust_z(cosines, centre, spread)
    embeddings = raw.get("embeddings")
    documents = raw.get("documents")
    metadatas = raw.get("metadatas")
    hits = []
    for i, id_ in enumerate(ids):
        meta = stored_metadata(metadatas[0][i]) if metadatas is not None else {}
        hits.append(
            Hit(
                id=id_,
                modality=modality,
                source=str(meta.get("source", "")),
                cosine=float(cosines[i]),
                z=float(zs[i]),
                relevance=normal_cdf(float(zs[i])),
                document=(documents[0][i] or "") if documents is not None else "",
                metadata=meta,
                embedding=np.asarray(embeddings[0][i], dtype=np.float32) if embeddings is not None else None,
            )
        )
    return hits


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads that run a query's per-modality Chroma calls side by side (they wait on Chroma, not Python)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mmrag-search")
        return _POOL


def _check(k: int, modality: str, threshold: float, lambda_mult: float) -> None:
    if k < 1:
        msg = f"k must be at least 1, got {k}"
        raise ConfigError(msg)
    if modality not in ("all", *MODALITIES):
        msg = f"modality must be all, image or text, got {modality!r}"
        raise ConfigError(msg)
    if not 0.0 <= threshold <= 1.0:
        msg = f"threshold is a relevance between 0 and 1, got {threshold}"
        raise ConfigError(msg)
    if not 0.0 <= lambda_mult <= 1.0:
        msg = f"lambda_mult must be between 0 and 1, got {lambda_mult}"
        raise ConfigError(msg)


def with_each_modality(chosen: list[Hit], candidates: Sequence[Hit]) -> list[Hit]:
    """Make room for the best hit of a modality that the cut left out (a quota of one per modality).

    Scores are comparable, but a mixed answer is what users of a mixed knowledge base come for: if the top k
    is all images while a note passed the threshold too, the best note replaces the last image.
    """
    if len(chosen) < 2:
        return chosen
    present = {h.modality for h in chosen}
    for modality in MODALITIES:
        if modality in present:
            continue
        best = next((h for h in candidates if h.modality == modality), None)
        if best is None:
            continue
        majority = max(present, key=lambda m: sum(h.modality == m for h in chosen))
        drop = max(i for i, h in enumerate(chosen) if h.modality == majority)
        chosen = [*chosen[:drop], *chosen[drop + 1 :], best]
        present.add(modality)
    return sorted(chosen, key=lambda h: h.z, reverse=True)


def _mmr(hits: Sequence[Hit], k: int, lambda_mult: float) -> list[Hit]:
    """Maximal marginal relevance on calibrated relevance (so images and texts compete fairly)."""
    chosen: list[Hit] = []
    remaining = list(hits)
    while remaining and len(chosen) < k:
        best, best_score = 0, -np.inf
        for i, hit in enumerate(remaining):
            redundancy = max(
                (
                    float(hit.embedding @ c.embedding)
                    for c in chosen
                    if hit.embedding is not None and c.embedding is not None
                ),
                default=0.0,
            )
            score = lambda_mult * hit.relevance - (1 - lambda_mult) * redundancy
            if score > best_score:
                best, best_score = i, score
        chosen.append(remaining.pop(best))
    return chosen


class MultimodalRetriever(BaseRetriever):
    """A LangChain retriever over an mmrag knowledge base: images and texts, ranked on one calibrated scale.

    Setup:
        Index a folder first (``mmrag index FOLDER`` or ``kb.sync(folder)``).

    Instantiate:
        .. code-block:: python

            from mmrag.app import open_knowledge_base
            from mmrag.config import Settings

            kb = open_knowledge_base(Settings.from_env())
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
    lambda_mult: float = 0.5

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
        return [hit.to_document() for hit in result.hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._options(kwargs)
        result = await run_in_executor(None, lambda: self.searcher.search(query, **options))
        return [hit.to_document() for hit in result.hits]

    def search(self, query: str | ImageSource | Query, **kwargs: Any) -> SearchResult:
        """The full result (hits, warnings, timings) with this retriever's options."""
        return self.searcher.search(query, **self._options(kwargs))

    def invoke_image(self, image: ImageSource, **kwargs: Any) -> list[Document]:
        """Search by image: similar images and related text."""
        return [hit.to_document() for hit in self.search(Query.image(image), **kwargs).hits]
