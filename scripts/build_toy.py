"""Regenerate (or just evaluate) the offline toy CLIP checkpoint.

Usage::

    python scripts/build_toy.py                      # train into mmrag/toy/checkpoint
    python scripts/build_toy.py --out /tmp/toy --seed 1 --steps 300
    python scripts/build_toy.py --evaluate-only      # measure the committed checkpoint

Prints progress and the report, and exits with status 1 when a quality bar is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mmrag.toy import checkpoint_dir
from mmrag.toy.report import EVAL_N_PER_CLASS, EVAL_SEED, evaluate
from mmrag.toy.train import DEFAULT_STEPS, WEIGHTS_NAME, train_toy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=checkpoint_dir(), help="checkpoint directory")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"steps (default {DEFAULT_STEPS})")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--evaluate-only", action="store_true", help="evaluate --out without training")
    parser.add_argument("--eval-seed", type=int, default=EVAL_SEED, help="seed of the held-out drawings")
    parser.add_argument("--eval-per-class", type=int, default=EVAL_N_PER_CLASS, help="held-out images per class")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if not args.evaluate_only:
        print(f"training the toy CLIP into {args.out} (seed {args.seed}, {args.steps} steps)")
        train_toy(args.out, seed=args.seed, steps=args.steps, threads=args.threads, log=print)
    report = evaluate(args.out, seed=args.eval_seed, n_per_class=args.eval_per_class)
    print()
    for line in report.lines():
        print(line)
    weights = args.out / WEIGHTS_NAME
    print(f"checkpoint file:           {weights} ({weights.stat().st_size:,} bytes)")
    print(f"wall time:                 {time.perf_counter() - start:.0f} s")
    failures = report.failures()
    for failure in failures:
        print(f"QUALITY BAR MISSED: {failure}", file=sys.stderr)
    if not failures:
        print("all quality bars met")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
