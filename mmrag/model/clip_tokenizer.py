"""CLIP's byte-level BPE tokenizer without torch: the same token ids as open_clip's ``SimpleTokenizer``.

open_clip's tokenizer module imports torch (its ``__call__`` returns a tensor), and importing torch costs a
one-shot query most of its time and memory. This is the same algorithm (OpenAI CLIP's, MIT License,
Copyright (c) 2021 OpenAI, as open_clip ships it) on the same vocabulary file, returning numpy arrays. It is
used only where it was checked against the model's own tokenizer (see :mod:`mmrag.model.query_card`), and
``tests/unit/test_clip_tokenizer.py`` compares the two on many texts, Chinese included.
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import itertools
import marshal
import os
import re
import string
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mmrag.errors import TextRuntimeError

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
CLEANERS = ("lower", "whitespace", "canonicalize")
_SPECIAL = ("<start_of_text>", "<end_of_text>")


def vocab_path() -> Path:
    """open_clip's BPE vocabulary file, found without importing open_clip (which imports torch).

    Raises:
        TextRuntimeError: open_clip is not installed, or its vocabulary file is missing.
    """
    spec = importlib.util.find_spec("open_clip")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / VOCAB_FILE
        if path.is_file():
            return path
    msg = f"open_clip's tokenizer vocabulary ({VOCAB_FILE}) is not installed; reinstall open-clip-torch"
    raise TextRuntimeError(msg)


@functools.lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


_PLAIN = re.compile(r"[ -%'-~\t\n]*")
"""Printable ASCII without ``&``: text that ftfy and HTML unescaping leave as it is (so ftfy isn't imported)."""


def _basic_clean(text: str) -> str:
    if _PLAIN.fullmatch(text):
        return text.strip()
    import ftfy

    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


def _whitespace_clean(text: str) -> str:
    return " ".join(text.split()).strip()


def _canonicalize(text: str) -> str:
    text = text.replace("_", " ").translate(str.maketrans("", "", string.punctuation)).lower()
    return " ".join(text.split()).strip()


def _cleaner(clean: str) -> Callable[[str], str]:
    if clean == "lower":
        return lambda t: _whitespace_clean(_basic_clean(t)).lower()
    if clean == "whitespace":
        return lambda t: _whitespace_clean(_basic_clean(t))
    if clean == "canonicalize":
        return lambda t: _canonicalize(_basic_clean(t))
    msg = f"unknown tokenizer cleaning {clean!r}; expected one of {', '.join(CLEANERS)}"
    raise TextRuntimeError(msg)


Tables = tuple[dict[str, int], dict[tuple[str, str], int]]


def _read_tables(path: Path) -> Tables:
    with gzip.open(path) as f:
        merges_text = f.read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in merges_text[1 : 49152 - 256 - 2 + 1]]
    vocab = list(_bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab.extend(_SPECIAL)
    ranks = {(m[0], m[1]): i for i, m in enumerate(merges)}
    return {token: i for i, token in enumerate(vocab)}, ranks


@functools.lru_cache(maxsize=2)
def _tables(path: Path, cache: Path | None) -> Tables:
    """The vocabulary (token → id) and merge ranks, read once per process.

    With ``cache``, they are kept there in :mod:`marshal` form (plain dicts of strings and ints, read several
    times faster than the vocabulary file is parsed), stamped with the vocabulary file's size and time.
    """
    stat = path.stat()
    stamp = (str(path), stat.st_size, stat.st_mtime_ns)
    if cache is not None:
        try:
            saved = marshal.loads(cache.read_bytes())
            if saved[0] == stamp:
                return saved[1], saved[2]
        except (OSError, ValueError, EOFError, TypeError, IndexError):
            pass
    encoder, ranks = _read_tables(path)
    if cache is not None:
        try:
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            tmp.write_bytes(marshal.dumps((stamp, encoder, ranks)))
            tmp.replace(cache)
        except OSError:
            pass
    return encoder, ranks


class ClipTokenizer:
    """Texts → int64 token ids (batch, context_length), as open_clip's ``SimpleTokenizer`` makes them.

    Args:
        context_length: positions per text; longer texts are cut, keeping the end-of-text token.
        clean: open_clip's cleaning: ``lower`` (its default), ``whitespace`` or ``canonicalize``.
        path: the BPE vocabulary file (default: open_clip's).
        tables_cache: a file to keep the parsed vocabulary in, for faster starts (see :func:`_tables`).
    """

    def __init__(
        self, context_length: int, clean: str = "lower", path: Path | None = None, *, tables_cache: Path | None = None
    ) -> None:
        import regex

        self.context_length = context_length
        self.clean = clean
        self._clean = _cleaner(clean)
        self.encoder, self._ranks = _tables(path or vocab_path(), tables_cache)
        self._bytes = _bytes_to_unicode()
        self._cache: dict[str, str] = {t: t for t in _SPECIAL}
        self._pattern = regex.compile(
            "|".join(_SPECIAL) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )
        self.sot_token_id = self.encoder[_SPECIAL[0]]
        self.eot_token_id = self.encoder[_SPECIAL[1]]

    def _bpe(self, token: str) -> str:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word: tuple[str, ...] = (*token[:-1], token[-1] + "</w>")
        pairs = _pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self._ranks.get(pair, float("inf")))
            if bigram not in self._ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    merged.extend(word[i:])
                    break
                merged.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = _pairs(word)
        joined = " ".join(word)
        self._cache[token] = joined
        return joined

    def encode(self, text: str) -> list[int]:
        """The text's token ids, without start and end tokens and without truncation."""
        ids: list[int] = []
        for token in self._pattern.findall(self._clean(text)):
            mapped = "".join(self._bytes[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self._bpe(mapped).split(" "))
        return ids

    def __call__(self, texts: str | Sequence[str]) -> npt.NDArray[np.int64]:
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot_token_id
            out[row, : len(ids)] = ids
        return out


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(word))


def trim(tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Cut the padding columns (token id 0) that no text in the batch reaches (numpy twin of text_tower.trim)."""
    length = int((tokens != 0).sum(axis=1).max()) if tokens.size else 1
    return tokens[:, : max(length, 1)]
