"""Benchmark: warm text→top-10 query latency over a 100k-document knowledge base, with a breakdown.

The knowledge base holds 50k image and 50k text records (random unit vectors: speed doesn't depend on
content) in embedded Chroma, built once under bench/out/. Queries go through the real path: ViT-B-32 text
tower (random weights) with padding trimmed, two Chroma HNSW searches, per-modality calibration, fusion.

    python bench/query_speed.py              # 200 distinct queries, then 200 repeats (cache hits)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mmrag.clip import ClipModel
from mmrag.store import IMAGE, TEXT, KnowledgeBase, Record, image_id, text_id

OUT = Path(__file__).parent / "out"
WORDS = (
    "cat", "dog", "car", "tree", "house", "river", "mountain", "beach",
    "city", "bridge", "flower", "bird", "boat", "train", "street",
)  # fmt: skip


def build(kb: KnowledgeBase, total: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    per = total // 2
    step = 5000
    with kb.write_lock():
        for modality in (IMAGE, TEXT):
            for start in range(kb.count(modality), per, step):
                vectors = rng.normal(size=(min(step, per - start), dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                records = []
                for i, v in enumerate(vectors, start=start):
                    source = f"/data/{modality}/{i:06d}" + (".jpg" if modality == IMAGE else ".md")
                    rid = image_id(source) if modality == IMAGE else text_id(source, 0)
                    meta = {"modality": modality, "source": source, "sha256": "0" * 64, "size": 1, "mtime_ns": 1}
                    records.append(Record(rid, v, "" if modality == IMAGE else f"note {i}", meta))
                kb.upsert(modality, records)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    import chromadb
    from chromadb.config import Settings

    clip = ClipModel("ViT-B-32", "random", device="cpu")
    clip.load()
    db = OUT / f"kb-{args.docs}"
    client = chromadb.PersistentClient(path=str(db), settings=Settings(anonymized_telemetry=False))
    kb = KnowledgeBase(client, clip, name="speed", location=str(db))
    start = time.perf_counter()
    build(kb, args.docs, clip.dim)
    took = time.perf_counter() - start
    print(f"KB: {kb.count(IMAGE)} images + {kb.count(TEXT)} text chunks ({took:.0f}s to build/open)")

    retriever = kb.as_retriever(k=10)
    searcher = retriever.searcher
    rng = np.random.default_rng(1)
    queries = [f"a photo of a {a} near a {b} {i}" for i, (a, b) in enumerate(rng.choice(WORDS, (args.queries, 2)))]
    for q in ["warm up one", "warm up two", "warm up three"]:
        searcher.search(q, k=10)

    def run(texts: list[str]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"total": [], "encode": [], "search": [], "fuse": []}
        for text in texts:
            t0 = time.perf_counter()
            result = searcher.search(text, k=10)
            out["total"].append(time.perf_counter() - t0)
            for key in ("encode", "search", "fuse"):
                out[key].append(result.timings[key])
        return out

    fresh = run(queries)
    repeat = run(queries)

    tokens = clip._ensure().tokenizer(["a photo of a cat near a tree"])
    model = clip._ensure().model
    full = []
    with torch.inference_mode():
        for _ in range(30):
            t0 = time.perf_counter()
            model.encode_text(tokens)
            full.append(time.perf_counter() - t0)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.queries} distinct queries, k=10")
    for name, timings in [
        ("distinct queries (text tower runs)", fresh),
        ("repeated queries (text cache hits)", repeat),
    ]:
        t = timings["total"]
        breakdown = ", ".join(f"{k} {statistics.median(v) * 1000:.1f}" for k, v in timings.items() if k != "total")
        print(f"{name}: p50 {percentile(t, 50):.1f} ms, p95 {percentile(t, 95):.1f} ms  (medians: {breakdown} ms)")
    print(f"reference: ViT-B-32 text tower at the full 77 tokens: median {statistics.median(full) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
