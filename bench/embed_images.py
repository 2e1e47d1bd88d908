"""Benchmark: ClipEmbeddings.embed_image against langchain_experimental's OpenCLIPEmbeddings.

Both embed the same 12 MP JPEGs with the same ViT-B-32 weights (random: speed doesn't depend on them),
in the same process, on the same machine. Each side runs ``--rounds`` times; medians are reported.

    python bench/embed_images.py            # 32 photos, 3 rounds
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from photos import make_photos

from mmrag.files.images import load_image
from mmrag.langchain.embeddings import ClipEmbeddings
from mmrag.model.clip import ClipModel


def rate(fn, paths: list[str], rounds: int) -> tuple[float, list[list[float]]]:
    times, out = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn(paths)
        times.append(time.perf_counter() - start)
    return len(paths) / statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=32, help="photos per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    from langchain_experimental.open_clip import OpenCLIPEmbeddings

    paths = [str(p) for p in make_photos(args.n)]
    torch.manual_seed(0)
    baseline = OpenCLIPEmbeddings(model_name="ViT-B-32", checkpoint="")  # "" = random weights
    clip = ClipModel("ViT-B-32", "random", device="cpu", batch_size=args.batch_size)
    clip.load()
    clip._ensure().model.load_state_dict(baseline.model.state_dict())  # the very same weights
    ours = ClipEmbeddings(clip=clip)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.n} photos of 12 MP, "
        f"{args.rounds} rounds (median)"
    )
    ours.embed_image(paths[:2])  # warm up both
    baseline.embed_image(paths[:1])
    base_rate, base_vecs = rate(baseline.embed_image, paths, args.rounds)
    our_rate, our_vecs = rate(ours.embed_image, paths, args.rounds)
    assert len(base_vecs) == len(our_vecs) == len(paths)

    # The ceiling: the batched model alone, on images already decoded and preprocessed.
    loaded = clip._ensure()
    pixels = torch.stack([loaded.preprocess(load_image(p, min_side=loaded.image_size)) for p in paths])

    def model_only(_: list[str]) -> list[list[float]]:
        with torch.inference_mode():
            return [loaded.model.encode_image(b) for b in pixels.split(args.batch_size)]  # type: ignore[misc]

    ceiling, _ = rate(model_only, paths, args.rounds)

    print(f"OpenCLIPEmbeddings.embed_image (langchain_experimental): {base_rate:6.2f} img/s")
    print(f"ClipEmbeddings.embed_image (mmrag, batch {args.batch_size}):          {our_rate:6.2f} img/s")
    print(f"batched model alone (decoded tensors, the ceiling):       {ceiling:6.2f} img/s")
    print(f"ratio mmrag / OpenCLIPEmbeddings: {our_rate / base_rate:.2f}x   (target >= 2.5x)")
    print(f"mmrag end to end / model ceiling: {our_rate / ceiling:.0%}")


if __name__ == "__main__":
    main()
