"""Benchmark: warm text→top-10 query latency over a 100k-document knowledge base, with a breakdown.

The knowledge base holds 50k image and 50k text records in embedded Chroma, built once under bench/out/:
random unit vectors (speed doesn't depend on content), a real ~5 KB thumbnail as each image's document,
and ~300-character text chunks naming two of 15 common words. Queries go through the real path: ViT-B-32
text tower (seeded random weights) with padding trimmed, two Chroma HNSW searches, the keyword channel (its
index is built once, before the timed queries, and every query's words match thousands of chunks), the
absolute score (the model's prior is measured once) and fusion (MMR off). In each round, each text runtime
(torch, then ONNX Runtime) runs the same 200 new distinct queries, then the same again (query cache hits),
in one process on one KB; figures pool the rounds.

    python bench/query_speed.py                          # torch vs onnx, 3 rounds
    python bench/query_speed.py --runtimes onnx --rounds 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mmrag.kb.records import IMAGE, TEXT, Record, image_id, text_id
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from mmrag.search.searcher import Searcher

OUT = Path(__file__).parent / "out"
WORDS = (
    "cat", "dog", "car", "tree", "house", "river", "mountain", "beach",
    "city", "bridge", "flower", "bird", "boat", "train", "street",
)  # fmt: skip


def sample_thumbnail() -> str:
    """A real thumbnail data URI (~5 KB), stored as every image's document, as indexing does."""
    from mmrag.files.images import load_image
    from mmrag.files.thumbnails import thumbnail_data_uri

    photo = sorted((Path(__file__).parent.parent / "sample_kb" / "images").rglob("*.jpg"))[0]
    return thumbnail_data_uri(load_image(photo))


def build(kb: KnowledgeBase, total: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    thumbnail = sample_thumbnail()
    per = total // 2
    step = 5000
    with kb.store.write_lock():
        for modality in (IMAGE, TEXT):
            for start in range(kb.store.count(modality), per, step):
                vectors = rng.normal(size=(min(step, per - start), dim)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                records = []
                words = rng.choice(WORDS, (len(vectors), 2))
                for i, v in enumerate(vectors, start=start):
                    source = f"/data/{modality}/{i:06d}" + (".jpg" if modality == IMAGE else ".md")
                    rid = image_id(source) if modality == IMAGE else text_id(source, 0)
                    meta = {"modality": modality, "source": source, "sha256": "0" * 64, "size": 1, "mtime_ns": 1}
                    a, b = words[i - start]
                    text = f"note {i} about a {a} and a {b}. " * 10  # words the keyword channel can match
                    records.append(Record(rid, v, thumbnail if modality == IMAGE else text, meta))
                kb.store.upsert(modality, records)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runtimes", default="torch,onnx", help="text runtimes to measure, baseline first")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the runtimes take turns within each")
    args = parser.parse_args()

    import chromadb
    from chromadb.config import Settings

    torch.manual_seed(0)  # the same random weights every run, so the ONNX export cache is reused
    clip = ClipModel("ViT-B-32", "random", device="cpu", runtime_dir=OUT / "onnx")
    clip.load()
    db = OUT / f"kb-{args.docs}-v3"
    client = chromadb.PersistentClient(path=str(db), settings=Settings(anonymized_telemetry=False))
    kb = KnowledgeBase(client, clip, name="speed", location=str(db))
    start = time.perf_counter()
    build(kb, args.docs, clip.dim)
    took = time.perf_counter() - start
    print(f"KB: {kb.store.count(IMAGE)} images + {kb.store.count(TEXT)} text chunks ({took:.0f}s to build/open)")

    rng = np.random.default_rng(1)
    queries = [f"a photo of a {a} near a {b} {i}" for i, (a, b) in enumerate(rng.choice(WORDS, (args.queries, 2)))]
    runtimes = args.runtimes.split(",")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.queries} distinct queries per round, "
        f"{args.rounds} rounds (runtimes interleaved), k=10"
    )
    if "onnx" in runtimes:
        clip.text_runtime = "onnx"
        start = time.perf_counter()
        print(f"[onnx] {clip.prepare_text_runtime()}: export or load {time.perf_counter() - start:.1f}s")
    pooled: dict[str, dict[str, dict[str, list[float]]]] = {}
    round_p50s: dict[str, list[float]] = {r: [] for r in runtimes}
    for round_ in range(args.rounds):
        texts = [f"{q} r{round_}" for q in queries]  # new texts every round: no cache hits across rounds
        for runtime in runtimes:
            clip.text_runtime = runtime
            searcher = Searcher(kb.store)  # a fresh query cache
            for q in ["warm up one", "warm up two", "warm up three"]:
                searcher.search(q, k=10)
            start = time.perf_counter()
            searcher.keywords.search("cat")
            print(
                f"[{runtime}] keyword index over {len(searcher.keywords)} records: {time.perf_counter() - start:.1f}s"
            )
            fresh, repeat = run(searcher, texts), run(searcher, texts)
            round_p50s[runtime].append(percentile(fresh["total"], 50))
            for name, timings in (("distinct queries", fresh), ("repeated queries (text cache hits)", repeat)):
                into = pooled.setdefault(runtime, {}).setdefault(name, {})
                for key, values in timings.items():
                    into.setdefault(key, []).extend(values)
    p50s = {}
    for runtime in runtimes:
        print(f"[{runtime}] round p50s: {', '.join(f'{p:.1f}' for p in round_p50s[runtime])} ms")
        for name, timings in pooled[runtime].items():
            t = timings["total"]
            breakdown = ", ".join(f"{k} {statistics.median(v) * 1000:.1f}" for k, v in timings.items() if k != "total")
            print(
                f"  {name}: p50 {percentile(t, 50):.1f} ms, p95 {percentile(t, 95):.1f} ms  (medians: {breakdown} ms)"
            )
        p50s[runtime] = percentile(pooled[runtime]["distinct queries"]["total"], 50)
    base, *others = runtimes
    for other in others:
        print(f"distinct-query p50, {base} / {other}: {p50s[base] / p50s[other]:.2f}x")

    tokens = clip._ensure().tokenizer(["a photo of a cat near a tree"])
    model = clip._ensure().model
    full = []
    with torch.inference_mode():
        for _ in range(30):
            t0 = time.perf_counter()
            model.encode_text(tokens)
            full.append(time.perf_counter() - t0)
    print(
        f"reference: ViT-B-32 text tower on torch at the full 77 tokens: median {statistics.median(full) * 1000:.1f} ms"
    )


def run(searcher: Searcher, texts: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"total": [], "encode": [], "search": [], "fuse": [], "fetch": []}
    for text in texts:
        t0 = time.perf_counter()
        result = searcher.search(text, k=10)
        out["total"].append(time.perf_counter() - t0)
        for key in ("encode", "search", "fuse", "fetch"):
            out[key].append(result.timings[key])
    return out


if __name__ == "__main__":
    main()
