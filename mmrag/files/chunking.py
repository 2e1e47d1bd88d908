"""Split text into chunks that CLIP's text tower reads whole, with overlap.

CLIP reads a fixed number of tokens (77 for ViT-B-32, start and end included). A chunk is measured in
the model's own tokens, so nothing past the context is silently truncated. Splitting prefers paragraph,
then line, then sentence, then clause, then word boundaries (:data:`SEPARATORS`, the order LangChain's
``RecursiveCharacterTextSplitter`` used here before), and cuts inside a word only where a stretch of text
has no boundary at all. Neighbouring chunks share about ``overlap`` tokens so a phrase cut at a boundary is
still found whole in one chunk.

How, and why it is fast: the tokenizer is by far the dearest part (CLIP's is pure Python, ~1 µs a byte
on prose and superlinear inside one long word), so ``token_count`` is called on candidate chunks only,
each about one chunk long, about once or twice per chunk, and never on a string longer than
``max_tokens * 24`` characters. Where to cut is guessed from the characters-per-token rate of the text measured so
far, the cut is snapped back to the strongest boundary before the guess, and the guess is corrected from
the real count (a secant step, then bisection) until the chunk fits. Boundaries are found with
``str.rfind`` inside that window, so no pass over the text is quadratic, whatever its shape.

Where spaces are rare (Chinese, Japanese), each probe is new text to the counter, so probing is slow
there. A counter that is also a :class:`WordCounter` (CLIP's fast counter, ``ClipModel.token_counter``)
instead splits a few thousand characters at a time into :class:`Words`, with running token counts, and
the cut is found from those by bisection, with no probe at all: the same cut, at the strongest boundary
that fits, counted exactly. Where the words can't tell (a word longer than a chunk, a character whose
cleaning could change its neighbours), that chunk is probed as above.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

SEPARATORS = ["\n\n", "\n", "。", "！", "？", ". ", "! ", "? ", "；", "; ", "，", ", ", " ", ""]
"""Boundaries tried in order; the Chinese full stop and comma come before the space. The separator stays
at the end of the piece before it; ``""`` means anywhere (inside a word)."""

_RANKS: tuple[tuple[str, ...], ...] = (
    ("\n\n",),
    ("\n",),
    ("。", "！", "？", ". ", "! ", "? "),
    ("；", "; "),
    ("，", ", "),
    (" ",),
)
"""SEPARATORS grouped by strength: a cut goes after the last separator of the strongest rank that fits."""
_SENTENCE = 2  # cuts at a sentence end or stronger overlap by whole pieces of their rank
_SPACE = len(_RANKS) - 1
_ANYWHERE = len(_RANKS)  # the cut is inside a word
_END = -1  # the cut is the end of the text

_FIRST_RATE = 2.0  # characters per content token guessed for a document's first chunk (English ~4.5,
# Chinese ~0.4)
_MIN_RATE, _MAX_RATE = 0.1, 24.0  # the guess is kept in this range; no probe is longer than budget * _MAX_RATE
# characters
_AIM = 0.96  # guess a little short: a chunk that fits costs one call, one that doesn't, two
_GROW = 0.15  # probe further only when the estimate says the chunk could grow by this fraction
_MAX_PROBES = 6  # once a chunk fits, stop looking for a better cut after this many calls
_SMOOTH = 0.3  # weight of the latest chunk's rate in the running guess
_SECANT_TRIES = 3  # corrections from the measured rate before falling back to bisection
_STRETCH = 4096  # characters of words looked up at once, from a chunk's start (a WordCounter's)
_PATCH = 2  # a short stretch from inside a word holds this many chunks' characters, by the rate (or a long one is made)
_PIECE = 8  # a WordCounter's words are used where spaces and line ends come fewer than one in this many characters

_SEPARATORS_UP_TO = [[sep for r in _RANKS[: level + 1] for sep in r] for level in range(len(_RANKS))]
_NON_SPACE = re.compile(r"\S")


class Words(NamedTuple):
    """What a token counter knows of the words of ``text[origin:stop]``: where they begin and end, and the
    running count of their tokens. Offsets ``o`` below are positions in the text minus ``origin``.

    ``begins[o]`` is 1 where a word begins and ``ends[o]`` 1 where one ends (no token spans two words);
    ``totals[o]`` counts the content tokens of the words ending at or before ``o``. For a begin ``a`` and
    an end ``b > a`` the text between counts ``2 + totals[b] - totals[a] + closing.get(b, 0)`` tokens, start
    and end tokens included, exactly as the counter itself counts it. ``closing`` holds the few offsets
    where stopping there changes the last word's count (an ideograph inside a run of them, which the
    tokenizer would read as the run's end), by at most ``slack``. Every word is whole: one that ``stop``
    might cut is left out, and the stretch stops before it.
    """

    origin: int
    stop: int
    resume: int
    """No stretch can be found before this position (a character the counter can't split this way, or a
    word too long to count whole, lies between ``stop`` and here)."""
    totals: list[int]
    begins: bytearray
    ends: bytearray
    closing: dict[int, int]
    slack: int


@runtime_checkable
class WordCounter(Protocol):
    """A token counter that can also split a stretch of text into :class:`Words` (CLIP's fast counter can)."""

    def __call__(self, text: str) -> int: ...

    def words(self, text: str, start: int, stop: int) -> Words:
        """The words of ``text[start:stop]``, or of a shorter stretch from ``start`` (see :class:`Words`)."""
        ...


@dataclass(frozen=True)
class Chunk:
    """One piece of a text document: its text, its position among the chunks, and where it starts.

    ``start`` is the offset of ``text`` in the string given to :func:`chunk_text` (the document as read,
    not stripped): ``document[start : start + len(text)] == text``.
    """

    text: str
    index: int
    start: int


def chunk_text(
    text: str,
    *,
    token_count: Callable[[str], int],
    max_tokens: int,
    overlap: int = 12,
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_tokens`` tokens as ``token_count`` counts them.

    Every chunk is counted with ``token_count`` itself, or from a :class:`WordCounter`'s words, which count
    exactly as it does, so ``token_count(chunk.text) <= max_tokens`` holds exactly. Chunks are stripped of
    surrounding whitespace and never empty; together they hold every non-whitespace character of ``text``,
    in order. The result depends only on ``text``, the arguments and what ``token_count`` returns (and its
    words, for a :class:`WordCounter`).

    Args:
        text: the document.
        token_count: counts a string's tokens, start and end tokens included (``ClipModel.token_counter``;
            as a :class:`WordCounter`, text with few spaces is chunked from its words, without probing).
        max_tokens: the model's context length.
        overlap: tokens shared between neighbouring chunks, about; at most a quarter of the room for content.

    Returns:
        The non-empty chunks in order; each ``start`` is its offset in ``text`` as given.

    Raises:
        ValueError: ``max_tokens`` leaves no room for content, or one character alone doesn't fit.
    """
    budget = max_tokens - 2  # the start and end tokens are added once per chunk
    if budget < 1:
        msg = f"max_tokens={max_tokens} leaves no room for content beside the start and end tokens"
        raise ValueError(msg)
    return _Chunker(text, token_count, max_tokens, max(0, min(overlap, budget // 4))).run()


class _Chunker:
    """The state of one :func:`chunk_text` call; positions are offsets in the original text."""

    def __init__(self, text: str, token_count: Callable[[str], int], max_tokens: int, overlap: int) -> None:
        self.text = text
        self.token_count = token_count
        self.max_tokens = max_tokens
        self.budget = max_tokens - 2
        self.overlap = overlap
        self.end = len(text.rstrip())  # where the last non-whitespace character ends
        # the separators this text holds (a rfind for one it lacks is time lost, once per probe)
        self.ranks = [
            (level, seps) for level, rank in enumerate(_RANKS) if (seps := tuple(x for x in rank if x in text))
        ]
        """(level, separators) of each rank of separators the text holds, strongest first."""
        self.reach = int(self.budget * _MAX_RATE)  # the most characters a chunk is looked for in
        # for each level, the separators of it or stronger that the text holds, as one pattern (the shorter first,
        # so that a match ends as early as any can): where the overlap may start
        self.up_to = [
            re.compile("|".join(re.escape(x) for x in sorted(present, key=len))) if present else None
            for present in ([x for x in seps if x in text] for seps in _SEPARATORS_UP_TO)
        ]
        # Probing is cheap where spaces split the text into short pieces the counter has seen before; where
        # they don't (Chinese, Japanese), every probe is new text, and the counter's words do better.
        sparse = len(text) > _PIECE * (text.count(" ") + text.count("\n"))
        self.words_of = token_count.words if sparse and isinstance(token_count, WordCounter) else None
        # the words known, from where the last long stretch began, and from a start inside one of its words
        self.stretch = self.patch = Words(0, 0, 0, [0], bytearray(1), bytearray(1), {}, 0)
        self.resume = 0 if self.words_of else len(text)  # where looking up words can help again

    def run(self) -> list[Chunk]:
        text = self.text
        start = self._skip_space(0)
        chunks: list[Chunk] = []
        floor = start  # a cut must lie beyond this: the chunk must hold something new
        rate = _FIRST_RATE
        first = True
        while start < self.end:
            found = self._exact_cut(start, floor, rate) if start >= self.resume else None
            if found is None:
                found = self._find_cut(start, floor, rate)
            if found is None:
                if start < floor:  # even the overlap leaves no room: start afresh at the new text
                    start = floor
                    continue
                msg = f"the character at offset {start} alone takes more than {self.max_tokens} tokens"
                raise ValueError(msg)
            cut, level, here = found
            # The next guess: an average over recent chunks, but follow a change of script or style at once.
            rate = here if first or not 1 / 1.5 < here / rate < 1.5 else _SMOOTH * here + (1 - _SMOOTH) * rate
            first = False
            chunks.append(Chunk(text[start:cut].rstrip(), len(chunks), start))
            if cut >= self.end:
                break
            floor = self._skip_space(cut)
            start = self._overlap_start(start, cut, level, here)
            if start < cut and self.words_of is not None:
                start = self._at_word(start, cut)
            if start >= cut:
                start = floor
        return chunks

    # --- where to cut ---------------------------------------------------------------------------

    def _find_cut(self, start: int, floor: int, rate: float) -> tuple[int, int, float] | None:
        """The cut ending the chunk that begins at ``start``: (position, level, characters per content token).

        The cut lies in (``floor``, ...] and ``text[start:cut]`` fits; among the cuts that fit it is, as
        far as a few probes can tell, the last one at the strongest level. None when nothing beyond
        ``floor`` fits.
        """
        limit = min(self.end, start + self.reach)  # characters: no encoding needed
        target = self._forward(start, int(self.budget * rate * _AIM))
        fit: tuple[int, int, float] | None = None
        fail = limit + 1  # the smallest cut known not to fit
        probes = failures = 0
        while True:
            hi = min(max(target, floor + 1), limit, fail - 1)
            if hi <= floor:
                return fit
            cut, level = self._best_cut(start, floor, hi)
            if fit is not None and (cut <= fit[0] or probes == _MAX_PROBES):
                return fit
            tokens = self.token_count(self.text[start:cut].rstrip())
            probes += 1
            here = self._rate(start, cut, tokens - 2)
            if tokens <= self.max_tokens:
                fit = (cut, level, here)
                if level == _END or cut >= limit:
                    return fit
                grown = self._forward(start, int(self.budget * here))
                if grown - cut <= max(1.0, (cut - start) * _GROW):
                    return fit
                target = grown  # the rate says a longer chunk may fit, perhaps up to a stronger boundary
            else:
                fail = cut
                failures += 1
                if failures <= _SECANT_TRIES:
                    target = self._forward(start, int(self.budget * here * _AIM))
                else:
                    target = (max(floor, fit[0] if fit else 0) + fail) // 2

    def _exact_cut(self, start: int, floor: int, rate: float) -> tuple[int, int, float] | None:
        """:meth:`_find_cut` from the words' running counts, without probing: the last cut at the strongest
        level that fits, else the end of the last word that fits. None where the words can't tell (one word
        alone overflows, a stretch the counter can't split): then the probes decide."""
        limit = min(self.end, start + self.reach)
        words = self.stretch
        at = start - words.origin
        if not (0 <= at < len(words.begins) and words.begins[at]):
            if 0 <= at < len(words.begins) - 1:
                # The start is inside a word of the stretch (a run of punctuation): a short stretch from here
                # will do for this chunk, and the long one serves again from the next word on.
                words = self.patch
                at = start - words.origin
                if not (0 <= at < len(words.begins) and words.begins[at]):
                    patch = start + int(self.budget * rate * _PATCH) + 16  # a few chunks' worth, as the rate guesses
                    words = self._stretch_from(start, min(limit, patch), long=False)
                    at = 0
            else:
                words = self._stretch_from(start, limit)
                at = 0
            if not words.begins[at]:
                return None
        origin, totals, ends, closing, budget = words.origin, words.totals, words.ends, words.closing, self.budget
        before = totals[at]
        # No word ending at or after `over` fits; before it, the last end that does.
        over = bisect_right(totals, before + budget + words.slack, at)
        last = ends.rfind(1, at + 1, over)
        if closing:
            while last > at and totals[last] - before + closing.get(last, 0) > budget:
                last = ends.rfind(1, at + 1, last)
        if last <= at:  # one word alone overflows the chunk: it is cut inside, by the probes
            following = ends.find(1, at + 1)
            self.resume = origin + following if following > 0 else words.resume
            return None
        if over == len(totals) and words.stop < self.end:  # words beyond the stretch might fit too
            if origin == start and words is self.stretch:  # a long stretch began here and still ends too soon
                self.resume = max(words.resume, start + 1)
                return None
            return self._exact_cut(start, floor, rate) if self._stretch_from(start, limit).begins[0] else None
        if origin + last >= self.end:  # the rest of the text fits
            return self.end, _END, self._rate(start, self.end, totals[last] - before)
        following = words.begins.find(1, last)  # every cut that fits lies before the word after the last that fits
        hi = origin + following if following > 0 else words.stop
        if hi > limit:
            return None
        text = self.text
        found = self._separator_cut(start, floor, hi)
        if found is None:  # no separator: the end of the last word that fits
            cut = origin + last
            if cut <= floor:
                return None
            return cut, _ANYWHERE, self._rate(start, cut, totals[last] - before + closing.get(last, 0))
        cut, level = found
        end = cut
        if text[end - 1].isspace():
            end = len(text[start:end].rstrip()) + start
        at_end = end - origin
        if not ends[at_end]:
            # The separator ends inside a run of punctuation ("。”", "，“"): cut after the run where it fits,
            # so that the closing quote stays with its sentence and the next chunk starts at a word.
            run_end = ends.find(1, at_end)
            if 0 < run_end <= last:
                cut = end = origin + run_end
                at_end = run_end
        if ends[at_end]:
            tokens = totals[at_end] - before + closing.get(at_end, 0)
        else:  # still inside a word: count it
            tokens = self.token_count(text[start:end]) - 2
        if tokens > budget:
            return None
        return cut, level, self._rate(start, cut, tokens)

    def _at_word(self, start: int, cut: int) -> int:
        """``start``, or where the word it lies inside ends (an overlap that would start after the comma of
        "，“" starts after the quote; ``cut`` or beyond, no overlap, if that is the cut)."""
        words = self.stretch
        at = start - words.origin
        if 0 <= at < len(words.begins) - 1 and not words.begins[at]:
            end = words.ends.find(1, at)
            if end > 0:
                return self._skip_space(words.origin + end)
        return start

    def _stretch_from(self, start: int, limit: int, *, long: bool = True) -> Words:
        """The words from ``start`` on: far enough for a few chunks (and for one, up to ``limit``), or, not
        ``long``, up to ``limit`` only, kept apart from the long stretch."""
        assert self.words_of is not None
        stop = min(len(self.text), max(limit, start + _STRETCH) if long else limit)
        words = self.words_of(self.text, start, stop)
        if long:
            self.stretch = words
        else:
            self.patch = words
        if not words.begins or not words.begins[0]:
            self.resume = max(words.resume, start + 1)
        return words

    @staticmethod
    def _rate(start: int, cut: int, tokens: int) -> float:
        """Characters per content token of ``text[start:cut]``, kept in the guessing range."""
        here = (cut - start) / tokens if tokens > 0 else _MAX_RATE
        return _MAX_RATE if here > _MAX_RATE else _MIN_RATE if here < _MIN_RATE else here

    def _best_cut(self, start: int, floor: int, hi: int) -> tuple[int, int]:
        """The preferred cut in (``floor``, ``hi``]: the end of the text, else the last occurrence of the
        strongest separator, else ``hi`` itself (not inside a cluster of combining marks or emoji)."""
        if hi >= self.end:
            return self.end, _END
        found = self._separator_cut(start, floor, hi)
        if found is not None:
            return found
        text = self.text
        cut = hi
        while cut - 1 > floor and hi - cut < 8 and (_clings(text[cut]) or text[cut - 1] == "\u200d"):
            cut -= 1
        return cut, _ANYWHERE

    def _separator_cut(self, start: int, floor: int, hi: int) -> tuple[int, int] | None:
        """(cut, level) after the last occurrence in ``text[start:hi]`` of the strongest separator that ends
        beyond ``floor``; None if there is none."""
        text = self.text
        for level, rank in self.ranks:
            cut = -1
            for sep in rank:
                i = text.rfind(sep, start, hi)
                if i >= 0 and i + len(sep) > cut:
                    cut = i + len(sep)
            if cut > floor:
                return cut, level
        return None

    def _overlap_start(self, start: int, cut: int, level: int, rate: float) -> int:
        """Where the next chunk starts so that it repeats about ``overlap`` tokens before ``cut``.

        After a paragraph, line or sentence cut the overlap is whole pieces of that kind (none when the last
        is too long, as LangChain's splitter did); after a clause or word cut, whole words; after a cut
        inside a word, characters. Returns ``cut`` or beyond for no overlap.
        """
        if not self.overlap:
            return cut
        text = self.text
        chars = int(self.overlap * rate)
        lowest = max(start + 1, cut - chars) if chars > 0 else cut  # the earliest start allowed
        if lowest >= cut:
            return cut
        if level == _ANYWHERE:
            while lowest < cut and _clings(text[lowest]):
                lowest += 1
            return self._skip_space(lowest)
        pattern = self.up_to[level if level <= _SENTENCE else _SPACE]
        if pattern is None:
            return cut
        # the earliest separator ending at or after `lowest` and before the cut's own
        found = pattern.search(text, max(start, lowest - 2), cut - 1)
        while found is not None and found.end() < lowest:
            found = pattern.search(text, found.start() + 1, cut - 1)
        return self._skip_space(found.end()) if found is not None else cut

    # --- positions ------------------------------------------------------------------------------

    def _skip_space(self, i: int) -> int:
        """The first non-whitespace position at or after ``i`` (``len(text)`` if none)."""
        m = _NON_SPACE.search(self.text, i)
        return m.start() if m else len(self.text)

    def _forward(self, a: int, chars: int) -> int:
        """The position ``chars`` characters after ``a`` (at least one; at most the end of the text)."""
        return min(len(self.text), a + (chars if chars > 1 else 1))


def _clings(ch: str) -> bool:
    """Whether ``ch`` belongs with the character before it (a combining mark, joiner or emoji modifier)."""
    return ch == "\u200d" or "\U0001f3fb" <= ch <= "\U0001f3ff" or unicodedata.category(ch) in ("Mn", "Mc", "Me")
