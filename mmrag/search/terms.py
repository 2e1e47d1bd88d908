"""Words and keyword terms of a text, in English, Chinese and file names (no dictionary, no download).

* :func:`words` splits a text into lower-case words: runs of letters or digits, with file-name habits undone
  (``falcon9_rocket``, ``launchPad`` and ``wall-clock`` become separate words); each CJK character is a word.
* :func:`terms` is what the keyword channel indexes: the words minus stop words, English plurals folded
  (``cats`` → ``cat``), and each CJK run as its single characters *and* its character pairs, so ``猫`` finds
  ``一只猫`` and ``日落海边`` finds ``海边``. Character bigrams are the standard dictionary-free way to index
  Chinese (as Lucene's CJK analyzer does); they need no segmentation model.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+")

_STOP_WORDS = (
    "a an the of on in at to for from by with and or is are was were be been it its this that these those "
    "there here some any all me my i you we our show find search display give get see look looking want "
    "please what which where who how do does did have has can could would should"
)
STOP_WORDS = frozenset(_STOP_WORDS.split())
"""English words too common, or too much the query's own wrapping ("show me …"), to count as evidence."""

STOP_CHARACTERS = frozenset("的了是在和与或及个只张幅一这那些我你他她它们吗呢吧请找给看显示搜索有没")
"""Chinese characters that carry no subject on their own (particles, measure words, query wrapping)."""


def words(text: str) -> list[str]:
    """Lower-case words of ``text``; every CJK character is a word of its own."""
    out: list[str] = []
    for part in _parts(text):
        out.extend(list(part) if _CJK.fullmatch(part) else [part.lower()])
    return out


def _parts(text: str) -> list[str]:
    """Runs of letters or digits, split at file-name habits and between CJK and other scripts."""
    out: list[str] = []
    for token in _WORD.findall(text):
        for part in _CAMEL.split(token):
            at = 0
            for run in _CJK.finditer(part):
                if run.start() > at:
                    out.append(part[at : run.start()])
                out.append(run.group())
                at = run.end()
            if at < len(part):
                out.append(part[at:])
    return out


def is_cjk(word: str) -> bool:
    return bool(_CJK.fullmatch(word))


def terms(text: str) -> list[str]:
    """The keyword terms of ``text``, in order, with repeats (term frequency counts)."""
    out: list[str] = []
    for part in _parts(text):
        if _CJK.fullmatch(part):
            out.extend(c for c in part if c not in STOP_CHARACTERS)
            out.extend(part[i : i + 2] for i in range(len(part) - 1))
        elif (word := part.lower()) not in STOP_WORDS:
            out.append(_fold(word))
    return out


def _fold(word: str) -> str:
    """A light English plural fold, applied to documents and queries alike."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
