"""What a model with a closed vocabulary can read: the toy model knows the words of its training captions only.

Real CLIP was trained on hundreds of millions of captions and reads any English word. The toy model was trained
on captions of coloured shapes, so the tokens of "cat" or "rocket" were never trained: their embeddings are
noise, and such a query lands near whatever the model's untrained directions point at (for the toy: purple
squares), with a high cosine. No score built on that cosine can be trusted, so for a model that declares its
vocabulary the CLIP channel abstains on a text query with a word outside it, and on a text document most of
whose words lie outside it (the toy can't read an English essay); the keyword channel still answers.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from mmrag.search.terms import STOP_CHARACTERS, STOP_WORDS, words
from mmrag.toy import TOY_MODEL_NAME
from mmrag.toy.shapes import CLASSES, captions

_TOKEN = re.compile(r"[A-Za-z]+|[\u3400-\u9fff]|\s+|[^A-Za-z\u3400-\u9fff\s]+")


@dataclass(frozen=True)
class Vocabulary:
    """The words a model was trained on (query wrapping such as "show me" is always allowed)."""

    known: frozenset[str]

    def unknown(self, text: str) -> list[str]:
        """The words of ``text`` the model never learnt, in order, without repeats."""
        out: list[str] = []
        for word in words(text):
            if not (self._knows(word) or _wrapping(word) or word in out):
                out.append(word)
        return out

    def _knows(self, word: str) -> bool:
        """A trained word, or the plural of one (which :meth:`normalise` folds)."""
        return word in self.known or (word.endswith("s") and word[:-1] in self.known)

    def normalise(self, text: str) -> str:
        """``text`` as the model can read it: plurals of known words folded ("circles" → "circle"), and the
        query's wrapping words the model never learnt ("show me", "找") left out. Other words stay as they
        are (and :meth:`unknown` reports them)."""
        out: list[str] = []
        for token in _TOKEN.findall(text):
            word = token.lower()
            if word.isspace() or word in self.known or not (word[0].isalnum()):
                out.append(token)
            elif word.endswith("s") and word[:-1] in self.known:
                out.append(token[:-1])
            elif word in STOP_WORDS or word in STOP_CHARACTERS:
                continue
            else:
                out.append(token)
        return " ".join("".join(out).split())

    def known_share(self, text: str) -> float:
        """The share of ``text``'s content words the model knows (1 for a text with no content words)."""
        content = [w for w in words(text) if not _wrapping(w)]
        if not content:
            return 1.0
        return sum(self._knows(w) for w in content) / len(content)


def _wrapping(word: str) -> bool:
    """A word that carries no subject (a stop word, a particle, a number): never counted as unknown."""
    return word in STOP_WORDS or word in STOP_CHARACTERS or word.isdigit()


@functools.cache
def toy_vocabulary() -> Vocabulary:
    """Every word of the toy model's training captions (English words and Chinese characters)."""
    return Vocabulary(frozenset(w for cls in CLASSES for caption in captions(cls) for w in words(caption)))


def vocabulary_of(clip: Any) -> Vocabulary | None:
    """The closed vocabulary of ``clip``, or None for a model that reads any word (real CLIP)."""
    return toy_vocabulary() if getattr(clip, "model_name", None) == TOY_MODEL_NAME else None
