"""Calibrated mixed image+text search over a :class:`~mmrag.kb.store.Store` (no LangChain here).

One query (text, image, or a weighted combination) is embedded once, each modality's collection is searched
for candidates, each candidate gets a calibrated score (see :mod:`mmrag.search.calibration`), and the
candidates are merged by that score, filtered by a relevance threshold, optionally diversified (MMR), and cut
to k. :class:`~mmrag.langchain.retriever.MultimodalRetriever` is the LangChain face of :class:`Searcher`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from mmrag.defaults import DEFAULT_K, DEFAULT_LAMBDA, DEFAULT_THRESHOLD
from mmrag.errors import ConfigError
from mmrag.files.images import ImageSource
from mmrag.kb.records import MODALITIES, stored_metadata
from mmrag.kb.store import Store
from mmrag.model.language import language_warning
from mmrag.search.calibration import Calibrator, normal_cdf, robust_z
from mmrag.search.fusion import mmr as diversified
from mmrag.search.fusion import with_each_modality
from mmrag.search.hits import Hit, Modality, SearchResult
from mmrag.search.query import Query, QueryEncoder
from mmrag.vectors import Matrix

MIN_CANDIDATES = 32


class Searcher:
    """Searches a knowledge base with calibrated, mixed-modality scores.

    Args:
        store: the knowledge base's store.
        encoder: query encoder (with its text cache); one is made if not given.
        calibrator: per-modality calibration; one is made if not given.
    """

    def __init__(
        self, store: Store, *, encoder: QueryEncoder | None = None, calibrator: Calibrator | None = None
    ) -> None:
        self.store = store
        self.encoder = encoder or QueryEncoder(store.clip)
        self.calibrator = calibrator or Calibrator(store)

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
        lambda_mult: float = DEFAULT_LAMBDA,
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
        self.store.refresh()  # here, before the pool's threads read: they must all see one client
        futures = {m: _pool().submit(self._candidates, m, vector, n, where, mmr) for m in wanted}
        stats = {m: self.calibrator.centre_and_spread(m, vector) for m in wanted}  # while Chroma searches
        raw = {m: f.result() for m, f in futures.items()}
        timings["search"] = time.perf_counter() - start

        start = time.perf_counter()
        hits = [hit for m in wanted for hit in _calibrated(m, raw[m], *stats[m])]
        hits.sort(key=lambda h: h.z, reverse=True)
        hits = [h for h in hits if h.relevance >= threshold]
        chosen = diversified(hits, k, lambda_mult) if mmr else hits[:k]
        hits = with_each_modality(chosen, hits)
        timings["fuse"] = time.perf_counter() - start

        start = time.perf_counter()
        if mmr:  # MMR searched many candidates with their vectors: fetch the documents of the chosen only
            hits = self._with_documents(hits)
        timings["fetch"] = time.perf_counter() - start
        warning = language_warning(q.texts, self.store.clip.label)
        return SearchResult(hits, [warning] if warning else [], timings)

    def _candidates(
        self, modality: str, vector: Matrix, n: int, where: Mapping[str, Any] | None, with_embeddings: bool
    ) -> dict[str, Any]:
        if self.store.count(modality) == 0:
            return {"ids": [[]]}
        include: list[Any] = ["distances"] + (["embeddings"] if with_embeddings else ["metadatas", "documents"])
        return self.store.query(modality, vector, n, where=where, include=include)

    def _with_documents(self, hits: list[Hit]) -> list[Hit]:
        """Fill in the chosen hits' documents and metadata (a hit deleted meanwhile is dropped).

        MMR's candidates are searched for ids, distances and vectors only: fetching documents (image
        thumbnails are several KB each) for every candidate costs more than the search, and only k are kept.
        """
        wanted: dict[str, list[str]] = {}
        for hit in hits:
            wanted.setdefault(hit.modality, []).append(hit.id)
        futures = [_pool().submit(self.store.get, modality, ids) for modality, ids in wanted.items()]
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
