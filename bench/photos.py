"""Make (once) a folder of synthetic 12-megapixel JPEG "photos" for the benchmarks.

The pixels are a smooth random field plus sensor-like noise, so the files are about the size of real
camera JPEGs (2-4 MB at quality 90) and decode like them. Cached under bench/out/photos-<n>/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).parent / "out"


def make_photos(n: int, size: tuple[int, int] = (4000, 3000), seed: int = 0) -> list[Path]:
    folder = OUT / f"photos-{n}-{size[0]}x{size[1]}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"photo_{i:04d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        coarse = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
        noise = rng.normal(0, 6, size=smooth.shape).astype(np.int16)
        pixels = np.clip(smooth + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, quality=90)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=32)
    args = parser.parse_args()
    made = make_photos(args.n)
    mb = sum(p.stat().st_size for p in made) / len(made) / 1e6
    print(f"{len(made)} photos in {made[0].parent} ({mb:.1f} MB each)")
