"""Benchmark: chunk_text of this checkout against another (e.g. the commit before a change), taking turns.

This shared machine's speed swings by up to 2x within a minute, so two figures measured minutes apart say
little about a change. Here each run is a fresh process that loads the toy model, generates one corpus
(bench/corpora.py, seeded) and times ``chunk_text`` with ``ClipModel.token_counter`` in CPU time; the two
checkouts take turns run by run, and the medians and their ratio are printed per corpus and budget.

    python bench/chunking_compare.py --compare /path/to/old/checkout
    python bench/chunking_compare.py --compare ../old --runs 7 --cases "Chinese prose:32;letters, no separator:32"
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = (
    "Chinese prose:32;Chinese prose:77;Chinese as written:32;Chinese as written:77;"
    "Chinese, no punctuation:32;letters, no separator:32;letters, no separator:77;English prose:77"
)
_ONE_RUN = """
import random, sys, time
sys.path[:0] = [{checkout!r}, {bench!r}]
from corpora import CORPORA
import mmrag.files.chunking
from mmrag.files.chunking import chunk_text
from mmrag.model.clip import ClipModel
assert mmrag.files.chunking.__file__.startswith({checkout!r}), mmrag.files.chunking.__file__
counter = ClipModel("toy", device="cpu", text_runtime="torch").token_counter
text = CORPORA[{corpus!r}](random.Random(0), {size})
start = time.process_time()
chunk_text(text, token_count=counter, max_tokens={max_tokens})
print(len(text.encode()) / (time.process_time() - start) / 1e6)
"""


def one_run(checkout: Path, corpus: str, max_tokens: int, size: int) -> float:
    code = _ONE_RUN.format(checkout=str(checkout), bench=str(HERE), corpus=corpus, size=size, max_tokens=max_tokens)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=Path, required=True, help="the other checkout (its root folder)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each checkout per case")
    parser.add_argument("--size", type=int, default=300_000, help="UTF-8 bytes of each corpus")
    parser.add_argument("--cases", default=CASES, help="corpus:max_tokens, separated by ;")
    args = parser.parse_args()
    ours, theirs = HERE.parent, args.compare.resolve()
    print(f"MB/s (10^6 UTF-8 bytes, CPU time), medians of {args.runs} runs taking turns; before = {theirs}")
    for case in args.cases.split(";"):
        corpus, _, budget = case.rpartition(":")
        before: list[float] = []
        after: list[float] = []
        for _ in range(args.runs):
            before.append(one_run(theirs, corpus, int(budget), args.size))
            after.append(one_run(ours, corpus, int(budget), args.size))
        b, a = statistics.median(before), statistics.median(after)
        print(
            f"{corpus}, max_tokens {budget}: before {b:.2f} ({min(before):.2f}-{max(before):.2f}), "
            f"after {a:.2f} ({min(after):.2f}-{max(after):.2f}): {a / b:.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
