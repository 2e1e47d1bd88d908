"""Benchmark: what the absolute score and the keyword channel add to one query, at 100k documents.

The two channels' own work, in process, without Chroma (whose HNSW search is unchanged; ``bench/query_speed.py``
measures the whole path through a real 100k-record store):

* the keyword channel: BM25 + coverage over an in-memory index of 50k image records (file names) and 50k text
  chunks (~300 characters naming two of 15 common words, so every query word has ~6,700 postings);
* the CLIP channel's absolute score: centring and the prior's curve for the 3k+3k candidates Chroma returns
  with their vectors (k=10: 32 per modality), and the vocabulary check.

Prints the median and p95 per query (200 queries after a warm-up), and the index's build time. Baseline: the
relative score (Φ(z)) had no per-candidate work beyond one subtraction, so the figures *are* the added cost.

    python bench/relevance_cost.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

if (_root := str(Path(__file__).resolve().parents[1])) not in sys.path:
    sys.path.insert(0, _root)

import numpy as np

from mmrag.kb.records import IMAGE, TEXT
from mmrag.model.clip import ClipModel
from mmrag.search.keyword import KeywordIndex
from mmrag.search.query import Query
from mmrag.search.scoring import Scorer

WORDS = ("cat", "dog", "car", "tree", "house", "river", "mountain", "beach", "city", "bridge", "flower", "bird")


class _Records:
    """What the keyword index reads of a store: counts, a write generation, and the records."""

    generation = 0

    def __init__(self, records: list[tuple[str, str, dict[str, str], str]]) -> None:
        self.records = records
        self.counts = {m: sum(r[1] == m for r in records) for m in (IMAGE, TEXT)}  # a Store caches its counts

    def count(self, modality: str) -> int:
        return self.counts[modality]

    def iter_records(self, modality: str) -> list[tuple[str, str, dict[str, str], str]]:
        return [r for r in self.records if r[1] == modality]


def main() -> None:
    rng = np.random.default_rng(0)
    records = []
    for i in range(50_000):
        records.append((f"img-{i}", IMAGE, {"source": f"/data/photos/{i:06d}_{WORDS[i % 12]}.jpg"}, ""))
    for i in range(50_000):
        a, b = rng.choice(WORDS, 2)
        records.append((f"txt-{i}", TEXT, {"source": f"/data/notes/{i:06d}.md"}, f"note {i} about a {a} and {b}. " * 8))
    index = KeywordIndex(_Records(records))  # type: ignore[arg-type]
    start = time.perf_counter()
    index.search("warm")  # builds the index
    build = time.perf_counter() - start
    clip = ClipModel("toy", device="cpu", text_runtime="torch")
    scorer = Scorer(clip)
    queries = [f"a {rng.choice(WORDS)} near a {rng.choice(WORDS)} {i}" for i in range(200)]
    vectors = {q: clip.encode_query_texts([q])[0] for q in queries}
    candidates = rng.normal(size=(64, clip.dim)).astype(np.float32)
    candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
    keyword_ms, score_ms = [], []
    for q in queries[:5]:
        index.search(q)
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, limit=32)
        keyword_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        query = scorer.readable_query(Query.text(q))
        modality, centred = scorer.query_side(query, vectors[q])
        scorer.understood(query)
        for doc_modality in (IMAGE, TEXT):
            scorer.relevance(modality, centred, doc_modality, candidates[:32])
        score_ms.append((time.perf_counter() - t0) * 1000)
    p95 = lambda v: sorted(v)[int(0.95 * len(v))]  # noqa: E731
    print(f"keyword index over {len(records)} records: built in {build:.1f}s")
    print(f"keyword channel per query: median {statistics.median(keyword_ms):.2f} ms, p95 {p95(keyword_ms):.2f} ms")
    print(
        f"absolute score per query (64 candidates): median {statistics.median(score_ms):.2f} ms, "
        f"p95 {p95(score_ms):.2f} ms"
    )


if __name__ == "__main__":
    main()
