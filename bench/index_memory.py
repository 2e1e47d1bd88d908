"""Benchmark: peak memory of ``mmrag index`` on a folder of huge images, against a folder of one small photo.

Each huge image is a PNG just under the decompression-bomb limit (99 megapixels), half of them with an alpha
channel. The index runs as a real ``mmrag --model toy index`` subprocess under ``/usr/bin/time -v`` (peak RSS).

    python bench/index_memory.py              # 12 huge PNGs
    python bench/index_memory.py --count 4

Baseline (one run on the 2-core development machine, toy model, torch 2.14.1): 12 × 99 MP PNGs peaked at
2.49 GB before decodes were bounded by pixels and reduced right after decoding.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

BASELINE_PEAK_MB = 2490.0
"""12 × 99 MP PNGs, before (issue 14's measurement)."""


def peak_rss_mb(command: list[str], env: dict[str, str]) -> float:
    proc = subprocess.run(["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    assert found, proc.stderr[-2000:]
    return int(found.group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=12, help="huge images in the folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        huge, small = root / "huge", root / "small"
        huge.mkdir()
        small.mkdir()
        rng = random.Random(0)
        for i in range(args.count):
            mode = "RGBA" if i % 2 else "RGB"
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256), 128)[: len(mode)]
            Image.new(mode, (11000, 9000), colour).save(huge / f"huge{i:02d}.png")
        Image.new("RGB", (640, 480), (40, 90, 160)).save(small / "photo.jpg")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
        env |= {"MMRAG_HOME": str(root / "home"), "MMRAG_TEXT_RUNTIME": "torch"}
        mmrag = [sys.executable, "-m", "mmrag", "--model", "toy", "index"]
        base = peak_rss_mb([*mmrag, str(small), "--db", str(root / "kb-small")], env)
        peak = peak_rss_mb([*mmrag, str(huge), "--db", str(root / "kb-huge")], env)
    print(f"index one small photo:           peak RSS {base:7.0f} MB")
    extra = f"(+{peak - base:.0f} MB over one photo)"
    print(f"index {args.count:2d} x 99 MP PNGs (half RGBA): peak RSS {peak:7.0f} MB  {extra}")
    print(f"against the baseline of {BASELINE_PEAK_MB:.0f} MB for 12 such PNGs: ratio {peak / BASELINE_PEAK_MB:.2f}")


if __name__ == "__main__":
    main()
