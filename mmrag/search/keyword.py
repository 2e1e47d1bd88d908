"""The keyword channel: BM25 over the words that belong to each document, beside CLIP.

CLIP only knows the words it was trained on; a caption, a file name or a note often says exactly what the user
typed. Each record is indexed with the text that belongs to it:

* an image: its caption, its file name and the names of its two parent folders (``falcon9_rocket_on_launch_pad``
  → falcon, rocket, launch, pad);
* a text chunk: the chunk itself, its document's title and file name. Text that belongs to an image (OCR, a PDF
  figure's caption) is a child text record of that image, indexed like a chunk; a hit on it stands for the
  image (:mod:`mmrag.search.children`).

Terms come from :func:`mmrag.search.terms.terms` (English words, plurals folded, Chinese characters and
character pairs). A document's keyword *score* is BM25 (k1=1.2, b=0.75), for ranking; its keyword *relevance*
is an absolute probability built from how much of the query it covers, weighted by each term's rarity (IDF),
so that it is on the same 0-1 scale as the CLIP channel's: ``KEYWORD_CEILING · coverage² · (0.8 + 0.2 · bm25 /
best bm25)``. Query terms that no document holds count against the coverage, so "yellow star" on a knowledge
base holding only yellow squares stays low; among documents that cover the query alike, the one most about
it (short caption or file name against a long list that mentions it once) comes first.

The index lives in memory, is built from the store on first use (a paged read of metadata and documents) and is
rebuilt when the store's counts or write generation change. It is written here rather than taken from a BM25
library: ``bm25s`` costs 0.4 s to import (a CLI query's whole budget is 1 s), and coverage, which BM25 libraries
don't report, is what the score needs.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

from mmrag.kb.records import IMAGE, MODALITIES, Metadata
from mmrag.kb.store import Store
from mmrag.search.terms import terms

KEYWORD_CEILING = 0.9
"""The keyword channel's highest relevance: matching words alone never outrank a confident CLIP match."""
DENSITY_WEIGHT = 0.2
"""How much BM25 (term frequency against length: is the document *about* these words?) moves the relevance,
relative to the query's best-matching document."""
K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class KeywordHit:
    """One document the keyword channel found."""

    id: str
    modality: str
    relevance: float
    bm25: float
    matched: tuple[str, ...]


def field_text(modality: str, metadata: Mapping[str, Any], document: str) -> str:
    """The text a record is indexed by (see the module doc)."""
    source = str(metadata.get("source", ""))
    path = PurePath(source) if source else None
    names = []
    if path is not None:
        names.append(path.stem)
        names.extend(p for p in (path.parent.name, path.parent.parent.name) if p)
    if modality == IMAGE:
        parts = [str(metadata.get("caption", "")), *names]
    else:
        parts = [document, str(metadata.get("title", "")), *names]
    return "\n".join(p for p in parts if p)


class KeywordIndex:
    """An in-memory BM25 index of a store's records, kept in step with the store.

    Args:
        store: the knowledge base's store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._ids: list[str] = []
        self._modalities: list[str] = []
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lengths = np.zeros(0, dtype=np.float32)
        self._codes = np.zeros(0, dtype=np.int8)

    def invalidate(self) -> None:
        """Rebuild on next use (the knowledge base calls this after its own writes)."""
        with self._lock:
            self._key = None

    def _state(self) -> tuple[Any, ...]:
        return (*(self.store.count(m) for m in MODALITIES), self.store.generation)

    def _ensure(self) -> None:
        key = self._state()
        if key == self._key:
            return
        with self._lock:
            if key == self._key:
                return
            self._build(self.store.iter_records(m) for m in MODALITIES)
            self._key = key

    def _build(self, sources: Iterable[Iterable[tuple[str, str, Metadata, str]]]) -> None:
        ids: list[str] = []
        modalities: list[str] = []
        lengths: list[int] = []
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for records in sources:
            for id_, modality, metadata, document in records:
                counts = Counter(terms(field_text(modality, metadata, document)))
                row = len(ids)
                ids.append(id_)
                modalities.append(modality)
                lengths.append(sum(counts.values()))
                for term, tf in counts.items():
                    rows, tfs = postings.setdefault(term, ([], []))
                    rows.append(row)
                    tfs.append(tf)
        self._ids, self._modalities = ids, modalities
        self._codes = np.asarray([MODALITIES.index(m) if m in MODALITIES else -1 for m in modalities], dtype=np.int8)
        self._lengths = np.asarray(lengths, dtype=np.float32)
        self._postings = {
            t: (np.asarray(r, dtype=np.int64), np.asarray(f, dtype=np.float32)) for t, (r, f) in postings.items()
        }

    def __len__(self) -> int:
        self._ensure()
        return len(self._ids)

    def search(self, query: str, *, modality: str = "all", limit: int = 50) -> list[KeywordHit]:
        """Documents holding the query's terms, best first: relevance (coverage), then BM25."""
        wanted = list(dict.fromkeys(terms(query)))
        if not wanted:
            return []
        self._ensure()
        n = len(self._ids)
        if n == 0:
            return []
        average = float(self._lengths.mean()) or 1.0
        idf = {t: self._idf(t, n) for t in wanted}
        total = sum(idf.values())
        bm25 = np.zeros(n, dtype=np.float32)
        covered = np.zeros(n, dtype=np.float32)
        terms_of = np.zeros(n, dtype=np.uint64)  # bit j: the document holds the query's term j (the first 64)
        for j, term in enumerate(wanted):
            found = self._postings.get(term)
            if found is None:
                continue
            rows, tf = found
            norm = tf + K1 * (1 - B + B * self._lengths[rows] / average)
            bm25[rows] += idf[term] * tf * (K1 + 1) / norm
            covered[rows] += idf[term]
            if j < 64:
                terms_of[rows] |= np.uint64(1 << j)
        candidates = np.flatnonzero(covered > 0)
        if modality != "all":
            candidates = candidates[self._codes[candidates] == MODALITIES.index(modality)]
        if len(candidates) == 0:
            return []
        coverage = covered[candidates] / total
        best = float(bm25[candidates].max()) or 1.0
        relevance = KEYWORD_CEILING * coverage**2 * (1 - DENSITY_WEIGHT + DENSITY_WEIGHT * bm25[candidates] / best)
        if len(candidates) > 4 * limit:  # only the best few need a full sort: partition first (a common word has
            top = np.argpartition(-relevance, 4 * limit)[: 4 * limit]  # thousands of documents)
            order = top[np.lexsort((-bm25[candidates[top]], -relevance[top]))][:limit]
        else:
            order = np.lexsort((-bm25[candidates], -relevance))[:limit]
        rows = candidates[order]
        matched = [[t for j, t in enumerate(wanted[:64]) if int(bits) >> j & 1] for bits in terms_of[rows]]
        return [
            KeywordHit(
                self._ids[row],
                self._modalities[row],
                float(relevance[i]),
                float(bm25[row]),
                tuple(words_matched),
            )
            for row, i, words_matched in zip(rows.tolist(), order.tolist(), matched, strict=True)
        ]

    def _idf(self, term: str, n: int) -> float:
        found = self._postings.get(term)
        df = len(found[0]) if found is not None else 0
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))
