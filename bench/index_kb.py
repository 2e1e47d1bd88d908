"""Benchmark: indexing a folder of 12 MP JPEGs into a knowledge base, and re-syncing a large unchanged folder.

Prints, from one run on one machine:

1. the batched model-only ceiling (ViT-B-32, random weights, decoded tensors);
2. mmrag's end-to-end sync (decode, embed, thumbnails, Chroma writes) and its share of the ceiling;
3. LangChain's usual path on the same photos: ``OpenCLIPEmbeddings`` + ``langchain_chroma.Chroma.add_images``;
4. store bytes per image for both;
5. the time to re-sync an unchanged folder of ``--resync-files`` files (tiny model: nothing is embedded).

    python bench/index_kb.py                 # 24 photos for mmrag, 8 for LangChain, 10,000-file re-sync
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from photos import make_photos
from PIL import Image

from mmrag.files.images import load_image
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def client(path: Path):  # type: ignore[no-untyped-def]
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=24, help="photos for mmrag")
    parser.add_argument("--langchain-n", type=int, default=8, help="photos for the LangChain path (slow)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--resync-files", type=int, default=10_000)
    args = parser.parse_args()

    from langchain_chroma import Chroma
    from langchain_experimental.open_clip import OpenCLIPEmbeddings

    photos = make_photos(max(args.n, args.langchain_n))
    mb = statistics.mean(p.stat().st_size for p in photos) / 1e6
    folder = Path(tempfile.mkdtemp(prefix="mmrag-bench-photos-"))
    for p in photos[: args.n]:
        shutil.copy(p, folder / p.name)

    torch.manual_seed(0)
    baseline = OpenCLIPEmbeddings(model_name="ViT-B-32", checkpoint="")
    clip = ClipModel("ViT-B-32", "random", device="cpu", batch_size=args.batch_size)
    clip.load()
    loaded = clip._ensure()
    loaded.model.load_state_dict(baseline.model.state_dict())

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.n} photos, 4000x3000, {mb:.1f} MB each")

    # 1. Ceiling: the batched model on already-decoded tensors.
    pixels = torch.stack([loaded.preprocess(load_image(p, min_side=loaded.image_size)) for p in photos[: args.n]])
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        with torch.inference_mode():
            for batch in pixels.split(args.batch_size):
                loaded.model.encode_image(batch)
        times.append(time.perf_counter() - start)
    ceiling = args.n / statistics.median(times)

    # 2. mmrag end to end, a fresh store each round.
    times, store_bytes = [], 0
    for _ in range(args.rounds):
        db = Path(tempfile.mkdtemp(prefix="mmrag-bench-db-"))
        kb = KnowledgeBase(client(db), clip, name=f"bench{_}", location=str(db))
        start = time.perf_counter()
        report = kb.sync(folder)
        times.append(time.perf_counter() - start)
        assert report.added == args.n, report
        store_bytes = dir_bytes(db)
        shutil.rmtree(db)
    ours = args.n / statistics.median(times)

    # 3. LangChain's usual path.
    db = Path(tempfile.mkdtemp(prefix="lc-bench-db-"))
    store = Chroma("langchain", embedding_function=baseline, client=client(db))
    uris = [str(p) for p in photos[: args.langchain_n]]
    start = time.perf_counter()
    store.add_images(uris)
    lc_rate = len(uris) / (time.perf_counter() - start)
    lc_bytes = dir_bytes(db) / len(uris)
    shutil.rmtree(db)

    print(f"batched model alone (ceiling)                 {ceiling:7.2f} img/s")
    share = f"= {ours / ceiling:.0%} of ceiling"
    print(f"mmrag sync, end to end (median of {args.rounds})          {ours:7.2f} img/s   {share}")
    print(f"OpenCLIPEmbeddings + Chroma.add_images         {lc_rate:7.2f} img/s   ({args.langchain_n} photos)")
    print(f"speed ratio mmrag / LangChain path: {ours / lc_rate:.1f}x")
    per_image = store_bytes / args.n
    print(
        f"store bytes per image: mmrag {per_image / 1e3:.1f} KB, LangChain {lc_bytes / 1e6:.1f} MB "
        f"-> {per_image / lc_bytes:.2%} of LangChain's (target <= 1%)"
    )

    # 5. Re-sync of a large unchanged folder.
    big = Path(tempfile.mkdtemp(prefix="mmrag-bench-resync-"))
    rng = np.random.default_rng(0)
    for i in range(args.resync_files):
        sub = big / f"d{i // 1000:02d}"
        sub.mkdir(exist_ok=True)
        if i % 10 == 0:
            (sub / f"note{i:05d}.txt").write_text(f"note number {i}")
        else:
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(sub / f"img{i:05d}.png")
    tiny_dir = Path(tempfile.mkdtemp(prefix="tiny-clip-"))
    (tiny_dir / "open_clip_config.json").write_text(
        json.dumps(
            {
                "model_cfg": {
                    "embed_dim": 32,
                    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
                    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
                }
            }
        )
    )
    tiny = ClipModel(f"local-dir:{tiny_dir}", device="cpu", batch_size=256)
    db = Path(tempfile.mkdtemp(prefix="mmrag-bench-resync-db-"))
    kb = KnowledgeBase(client(db), tiny, name="resync", location=str(db))
    start = time.perf_counter()
    first = kb.sync(big)
    first_s = time.perf_counter() - start
    assert first.added == args.resync_files, first
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        again = kb.sync(big)
        times.append(time.perf_counter() - start)
        assert again.unchanged == args.resync_files and again.added == again.updated == 0, again
    print(
        f"re-sync of an unchanged {args.resync_files}-file folder: {statistics.median(times):.2f} s "
        f"(median of {args.rounds}; target <= 5 s; first index took {first_s:.0f} s)"
    )
    for path in (folder, big, db, tiny_dir):
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
