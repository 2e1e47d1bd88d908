"""Mixed image+text search over a :class:`~mmrag.kb.store.Store`, with absolute scores (no LangChain here).

One query (text, image, or a weighted combination) is embedded once. Each modality's collection is searched
for candidates by CLIP (Chroma's nearest neighbours), and the keyword channel looks up the query's words in
the documents' captions, names and text (:mod:`mmrag.search.keyword`). Every candidate gets an absolute
relevance (:mod:`mmrag.search.scoring`); the candidates are merged by it, filtered by a relevance threshold,
optionally diversified (MMR), and cut to k. An empty result says why (:attr:`SearchResult.reason`).
:class:`~mmrag.langchain.retriever.MultimodalRetriever` is the LangChain face of :class:`Searcher`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.defaults import DEFAULT_K, DEFAULT_LAMBDA, DEFAULT_THRESHOLD
from mmrag.errors import ConfigError
from mmrag.files.images import ImageSource
from mmrag.kb.records import MODALITIES, TEXT, Record, stored_metadata
from mmrag.kb.store import Store
from mmrag.model.language import language_warning
from mmrag.search.calibration import Calibrator, robust_z
from mmrag.search.children import with_parents
from mmrag.search.fusion import mmr as diversified
from mmrag.search.fusion import with_each_modality
from mmrag.search.hits import Hit, Modality, Reason, SearchResult
from mmrag.search.keyword import KeywordHit, KeywordIndex
from mmrag.search.query import Query, QueryEncoder
from mmrag.search.scoring import Scorer, combine
from mmrag.vectors import Matrix

MIN_CANDIDATES = 32


class Searcher:
    """Searches a knowledge base with absolute, mixed-modality scores from two channels.

    Args:
        store: the knowledge base's store.
        encoder: query encoder (with its text cache); one is made if not given.
        calibrator: per-modality background statistics (the hits' ``z``); one is made if not given.
        scorer: the CLIP channel's absolute relevance; one is made if not given.
        keywords: the keyword channel; one is made if not given.
        prior_cache: where a model's measured score scale is kept between processes.
    """

    def __init__(
        self,
        store: Store,
        *,
        encoder: QueryEncoder | None = None,
        calibrator: Calibrator | None = None,
        scorer: Scorer | None = None,
        keywords: KeywordIndex | None = None,
        prior_cache: Path | None = None,
    ) -> None:
        self.store = store
        self.encoder = encoder or QueryEncoder(store.clip)
        self.calibrator = calibrator or Calibrator(store)
        self.scorer = scorer or Scorer(store.clip, cache_dir=prior_cache)
        self.keywords = keywords or KeywordIndex(store)

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
        keywords: bool = True,
    ) -> SearchResult:
        """At most k documents relevant to ``query``, best first.

        Args:
            query: a text, an image (path object, bytes or PIL image), or a :class:`Query`.
            k: how many hits at most (fewer when fewer pass the threshold).
            modality: ``all``, ``image`` or ``text``.
            where: a Chroma metadata filter, e.g. ``{"project": "demo"}``.
            threshold: minimum relevance, a probability (0 keeps everything).
            mmr: diversify with maximal marginal relevance over ``fetch_k`` candidates.
            fetch_k: candidates per modality (default: max(3k, 32); with MMR max(4k, 32)).
            lambda_mult: MMR's trade-off: 1 is pure relevance, 0 pure diversity.
            keywords: use the keyword channel beside CLIP.

        Raises:
            ConfigError: a bad option value.
            EmptyQueryError: the query has no terms.
            ImageError: an image in the query can't be read.
        """
        _check(k, modality, threshold, lambda_mult)
        q = Query.of(query)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        vector = self.encoder.vector(self.scorer.readable_query(q))
        timings["encode"] = time.perf_counter() - start

        start = time.perf_counter()
        wanted = MODALITIES if modality == "all" else (modality,)
        n = fetch_k or max((4 if mmr else 3) * k, MIN_CANDIDATES)
        self.store.refresh()  # here, before the pool's threads read: they must all see one client
        futures = {m: _pool().submit(self._candidates, m, vector, n, where, not mmr) for m in wanted}
        text = q.keyword_text()
        found = self.keywords.search(text, modality=modality, limit=n) if keywords and text else []
        stats = {m: self.calibrator.centre_and_spread(m, vector) for m in wanted}  # while Chroma searches
        raw = {m: f.result() for m, f in futures.items()}
        timings["search"] = time.perf_counter() - start

        start = time.perf_counter()
        by_keyword = {h.id: h for h in found}
        hits = [hit for m in wanted for hit in _hits(m, raw[m], *stats[m])]
        hits += self._keyword_only(hits, found, where, not mmr, stats, vector)
        query_modality, centred = self.scorer.query_side(q, vector)
        understood = self.scorer.understood(q)
        hits = [self._scored(h, query_modality, centred, understood, by_keyword.get(h.id)) for h in hits]
        hits.sort(key=lambda h: (h.relevance, h.keyword, h.z), reverse=True)
        hits = with_parents(hits, self.store, modality=modality)  # a child text stands for its image
        candidates = len(hits)
        hits = [h for h in hits if h.relevance >= threshold]
        chosen = diversified(hits, k, lambda_mult) if mmr else hits[:k]
        hits = with_each_modality(chosen, hits)
        timings["fuse"] = time.perf_counter() - start

        start = time.perf_counter()
        if mmr:  # MMR searched many candidates without their documents: fetch the chosen ones' only
            hits = with_parents(self._with_documents(hits), self.store, modality=modality)
        timings["fetch"] = time.perf_counter() - start
        warning = language_warning(q.texts, self.store.clip.label)
        reason = None if hits else self._reason(wanted, where, candidates)
        unknown = self.scorer.unknown_words(q) if reason == "irrelevant" else []
        return SearchResult(hits, [warning] if warning else [], timings, reason, str(q), unknown)

    def _scored(self, hit: Hit, query_modality: str, centred: Matrix, understood: float, kw: KeywordHit | None) -> Hit:
        assert hit.embedding is not None
        clip = float(self.scorer.relevance(query_modality, centred, hit.modality, hit.embedding[None, :])[0])
        clip *= understood
        if hit.modality == TEXT:
            clip *= self.scorer.readable(hit.document)
        keyword = kw.relevance if kw is not None else 0.0
        return replace(
            hit,
            relevance=combine(clip, keyword),
            clip=clip,
            keyword=keyword,
            matched=kw.matched if kw is not None else (),
        )

    def _reason(self, wanted: tuple[str, ...], where: Mapping[str, Any] | None, candidates: int) -> Reason:
        if sum(self.store.count(m) for m in wanted) == 0:
            return "empty"
        if where and candidates == 0:
            return "filtered"
        return "irrelevant"

    def _keyword_only(
        self,
        hits: list[Hit],
        found: list[KeywordHit],
        where: Mapping[str, Any] | None,
        documents: bool,
        stats: Mapping[str, tuple[float, float]],
        vector: Matrix,
    ) -> list[Hit]:
        """Keyword hits that CLIP's candidates missed, read from the store (the filter applies to them too)."""
        have = {h.id for h in hits}
        missing: dict[str, list[str]] = {}
        for kw in found:
            if kw.id not in have and kw.modality in stats:
                missing.setdefault(kw.modality, []).append(kw.id)
        out = []
        for modality, ids in missing.items():
            for record in self.store.get(modality, ids, embeddings=True, where=where):
                out.append(_record_hit(modality, record, vector, *stats[modality], documents or modality == TEXT))
        return out

    def _candidates(
        self, modality: str, vector: Matrix, n: int, where: Mapping[str, Any] | None, documents: bool
    ) -> dict[str, Any]:
        if self.store.count(modality) == 0:
            return {"ids": [[]]}
        # texts are small and the scorer reads them; image documents are thumbnails, fetched for the chosen only
        documents = documents or modality == TEXT
        include: list[Any] = ["distances", "embeddings"] + (["metadatas", "documents"] if documents else [])
        return self.store.query(modality, vector, n, where=where, include=include)

    def _with_documents(self, hits: list[Hit]) -> list[Hit]:
        """Fill in the chosen hits' documents and metadata (a hit deleted meanwhile is dropped).

        MMR's candidates are searched for ids, distances and vectors only: fetching documents (image
        thumbnails are several KB each) for every candidate costs more than the search, and only k are kept.
        """
        wanted: dict[str, list[str]] = {}
        for hit in hits:
            if not hit.document:
                wanted.setdefault(hit.modality, []).append(hit.id)
        futures = [_pool().submit(self.store.get, modality, ids) for modality, ids in wanted.items()]
        records = {r.id: r for f in futures for r in f.result()}
        out = []
        for hit in hits:
            if hit.document:
                out.append(hit)
            elif (r := records.get(hit.id)) is not None:
                out.append(
                    replace(hit, source=str(r.metadata.get("source", "")), document=r.document, metadata=r.metadata)
                )
        return out


def _hits(modality: str, raw: Mapping[str, Any], centre: float, spread: float) -> list[Hit]:
    """Chroma's candidates as hits (unscored), with their vectors and, if searched, documents."""
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
                relevance=0.0,
                document=(documents[0][i] or "") if documents is not None else "",
                metadata=meta,
                embedding=np.asarray(embeddings[0][i], dtype=np.float32) if embeddings is not None else None,
            )
        )
    return hits


def _record_hit(modality: str, record: Record, vector: Matrix, centre: float, spread: float, documents: bool) -> Hit:
    """A hit for a record found by keywords only (its cosine is computed here from its stored vector)."""
    cosine = float(np.asarray(record.embedding, dtype=np.float32) @ vector)
    return Hit(
        id=record.id,
        modality=modality,
        source=str(record.metadata.get("source", "")),
        cosine=cosine,
        z=float(robust_z([cosine], centre, spread)[0]),
        relevance=0.0,
        document=record.document if documents else "",
        metadata=record.metadata,
        embedding=np.asarray(record.embedding, dtype=np.float32),
    )


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
