"""Benchmark: chunk_text against the LangChain splitter it replaced, on prose and on text with no separators.

Texts are generated (seeded): English prose in sentences and paragraphs, Chinese prose (clauses, sentence
ends, paragraphs), Chinese as documents have it (with curly quotes, dashes, ellipses, digits and Latin names
among the clauses), one line of random letters, and one line of Chinese characters with no punctuation.
Every run measures chunks with the toy model's real tokenizer (open_clip's SimpleTokenizer, through
``ClipModel.token_counter``, which counts exactly as ``SimpleTokenizer.encode`` does but fast, and splits
text with few spaces into words for chunk_text to cut without probing: see mmrag/model/tokens.py), at
``max_tokens`` 77 (ViT-B-32) and 32 (the toy), and starts with the
tokenizer's word cache as loaded and the fast counter's caches empty, as a fresh process would. Times
are this process's CPU time (``time.process_time``: the work is single-threaded Python, and other jobs on
a shared machine don't inflate it). For each corpus and budget it prints:

- mmrag's ``chunk_text`` on the whole corpus: MB/s (UTF-8 bytes, median of ``--rounds``), token_count calls
  per chunk, chunks and their mean fill of the context;
- chunk_text handed the same counter as a plain function, so that every cut is probed (as before the counter
  gave its words), and the ratio;
- ``token_count`` called once on each of those chunks: the ceiling of a chunker that checks every chunk
  with the real tokenizer (probing does; cutting from the counter's words needn't, and beats it), and
  chunk_text's time against it; and the old ceiling, open_clip's own ``SimpleTokenizer.encode`` once a
  chunk (what ``token_count`` called before);
- the baseline, the old ``RecursiveCharacterTextSplitter`` code (git: mmrag/files/chunking.py before the
  rewrite, inlined below) on a smaller sample (it is too slow for the whole corpus), mmrag on that same
  sample, the ratio, and how many of the old splitter's chunks come out identical.

    python bench/chunking_speed.py                        # ~2 MB prose, ~1 MB with no separators, 3 rounds
    python bench/chunking_speed.py --scale 0.1 --rounds 1  # a quick look
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable

import open_clip
from corpora import chinese, chinese_as_written, english, hanzi_run, letters
from langchain_text_splitters import RecursiveCharacterTextSplitter

from mmrag.files.chunking import SEPARATORS, Words, chunk_text
from mmrag.model.clip import ClipModel
from mmrag.model.tokens import fast_token_counter


def old_chunk_text(text: str, *, token_count: Callable[[str], int], max_tokens: int, overlap: int = 12) -> list[str]:
    """The splitter chunk_text used before (LangChain's RecursiveCharacterTextSplitter), as it was."""
    text = text.strip()
    if not text:
        return []
    budget = max_tokens - 2

    def content_tokens(piece: str) -> int:
        return max(0, token_count(piece) - 2)

    splitter = RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        chunk_size=budget,
        chunk_overlap=min(overlap, budget // 4),
        length_function=content_tokens,
        keep_separator="end",
        strip_whitespace=True,
    )
    chunks, cursor = [], 0
    for piece in splitter.split_text(text):  # the offsets, as the old code found them
        found = text.find(piece, cursor)
        cursor = max(cursor, (found if found >= 0 else text.find(piece)) + 1)
        chunks.append(piece)
    return chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every corpus and sample size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budgets", default="77,32", help="max_tokens values")
    args = parser.parse_args()

    clip = ClipModel("toy", device="cpu", text_runtime="torch")
    tokenizer = clip._ensure().tokenizer
    loaded_cache = dict(tokenizer.cache)  # open_clip memoises BPE per word; a fresh process starts without
    fast = fast_token_counter(tokenizer)  # mmrag's exact counter remembers pieces and words too
    calls = 0

    counter = clip.token_counter  # what the sync gives chunk_text

    class Counted:
        """The counter as chunk_text sees it (a WordCounter, so it looks words up), counting its calls."""

        def __call__(self, s: str) -> int:
            nonlocal calls
            calls += 1
            return counter(s)

        def words(self, text: str, start: int, stop: int) -> Words:
            return counter.words(text, start, stop)

    token_count = Counted()

    def timed(*fns: Callable[[], list[str]]) -> list[tuple[float, list[str], int]]:
        """(median CPU seconds, output, token_count calls) of each function; the rounds take turns, so that
        a change in the machine's load falls on all of them alike."""
        nonlocal calls
        times: list[list[float]] = [[] for _ in fns]
        outs: list[list[str]] = [[] for _ in fns]
        counts = [0] * len(fns)
        for _ in range(args.rounds):
            for i, fn in enumerate(fns):
                tokenizer.cache.clear()
                tokenizer.cache.update(loaded_cache)
                if fast is not None:
                    fast.clear_cache()
                calls = 0
                start = time.process_time()
                outs[i] = fn()
                times[i].append(time.process_time() - start)
                counts[i] = calls
        return [(statistics.median(t), o, n) for t, o, n in zip(times, outs, counts, strict=True)]

    def report(name: str, text: str, sample: str, max_tokens: int) -> None:
        size, sample_size = len(text.encode()), len(sample.encode())
        chunks: list[str] = []  # filled by chunk_text's turn, then counted by the ceiling's turn in each round

        def ours() -> list[str]:
            chunks[:] = [c.text for c in chunk_text(text, token_count=token_count, max_tokens=max_tokens)]
            return chunks

        def probed() -> list[str]:  # the same counter, without its words: every cut probed
            return [c.text for c in chunk_text(text, token_count=lambda s: counter(s), max_tokens=max_tokens)]

        (took, _, n_calls), (ceiling, _, _), (probing, _, _) = timed(
            ours, lambda: [str(clip.token_count(c)) for c in chunks], probed
        )
        sample_chunks = chunks[: max(1, len(chunks) * len(sample) // len(text))]  # the old encode is too slow
        ((old_ceiling, _, _),) = timed(lambda: [str(len(tokenizer.encode(c)) + 2) for c in sample_chunks])
        old_ceiling *= len(chunks) / len(sample_chunks)
        assert max(clip.token_count(c) for c in chunks) <= max_tokens
        fill = statistics.mean(clip.token_count(c) for c in chunks) / max_tokens
        (ours_small, small_chunks, _), (old_small, old_chunks, _) = timed(
            lambda: [c.text for c in chunk_text(sample, token_count=token_count, max_tokens=max_tokens)],
            lambda: old_chunk_text(sample, token_count=token_count, max_tokens=max_tokens),
        )
        old_fill = statistics.mean(clip.token_count(c) for c in old_chunks) / max_tokens
        same = len(set(old_chunks) & set(small_chunks)) / len(set(old_chunks))
        print(
            f"{name}, max_tokens {max_tokens}: {size / 1e6:.2f} MB, {len(chunks)} chunks, fill {fill:.0%}, "
            f"{n_calls / len(chunks):.2f} token_count calls a chunk\n"
            f"  chunk_text                          {size / took / 1e6:7.3f} MB/s\n"
            f"  chunk_text probing every cut        {size / probing / 1e6:7.3f} MB/s (the counter without its words): "
            f"{probing / took:.2f}x\n"
            f"  token_count once a chunk            {size / ceiling / 1e6:7.3f} MB/s (checking every chunk: probing's "
            f"ceiling); chunk_text takes {took / ceiling:.0%} of its time\n"
            f"  SimpleTokenizer.encode once a chunk  {size / old_ceiling / 1e6:7.3f} MB/s (the old ceiling)\n"
            f"  {sample_size / 1e3:.0f} KB sample: old LangChain splitter {sample_size / old_small / 1e6:.3f} MB/s "
            f"(fill {old_fill:.0%}), chunk_text {sample_size / ours_small / 1e6:.3f} MB/s: "
            f"{old_small / ours_small:.1f}x; {same:.0%} of the old chunks come out identical",
            flush=True,
        )

    rng = random.Random(0)
    mb = int(1_000_000 * args.scale)
    corpora = [  # name, text, baseline sample size in bytes
        ("English prose", english(rng, 2 * mb), 200_000),
        ("Chinese prose", chinese(rng, 2 * mb), 200_000),
        ("Chinese as written", chinese_as_written(rng, 2 * mb), 200_000),
        ("letters, no separator", letters(rng, mb), 50_000),
        ("Chinese, no punctuation", hanzi_run(rng, mb), 50_000),
    ]
    print(
        f"Python {platform.python_version()}, open_clip {open_clip.__version__}: the toy model's tokenizer "
        f"({type(tokenizer).__name__}); CPU time, median of {args.rounds} rounds, each with a cold BPE cache; "
        "MB = 10^6 UTF-8 bytes"
    )
    for name, text, sample_bytes in corpora:
        sample = text[: int(len(text) * min(1.0, sample_bytes * args.scale / len(text.encode())))]
        for max_tokens in [int(b) for b in args.budgets.split(",")]:
            report(name, text, sample, max_tokens)


if __name__ == "__main__":
    main()
