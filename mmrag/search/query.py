"""Queries: text, image, or weighted sums of both ("query arithmetic", as rclip has it).

.. code-block:: python

    Query.text("cat")                                   # a text query
    Query.image("photo.jpg")                            # search by image
    Query.text("cat") + 0.5 * Query.image("photo.jpg") - Query.text("indoor")
    Query.vector(stored_embedding)                      # search by a vector already at hand

A query's vector is the weighted sum of its terms' unit embeddings, normalised again. Text embeddings are
cached (LRU), so repeated queries skip the text tower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from mmrag.errors import MmragError
from mmrag.files.images import ImageSource, describe
from mmrag.model.clip import ClipModel
from mmrag.search.cache import LruCache
from mmrag.vectors import Matrix, empty


class EmptyQueryError(MmragError):
    """A query with no terms, or whose terms cancel out."""


@dataclass(frozen=True)
class Term:
    """One weighted part of a query: a text or an image."""

    weight: float
    text: str | None = None
    image: ImageSource | None = None
    vector: Matrix | None = None

    def describe(self) -> str:
        if self.text is not None:
            what = repr(self.text)
        elif self.vector is not None:
            what = "a stored vector"
        else:
            what = f"image {describe(self.image)}"  # type: ignore[arg-type]
        return what if self.weight == 1.0 else f"{self.weight:g}·{what}"


@dataclass(frozen=True)
class Query:
    """A weighted combination of text and image terms."""

    terms: tuple[Term, ...]

    @classmethod
    def text(cls, text: str, weight: float = 1.0) -> Query:
        return cls((Term(weight, text=text),))

    @classmethod
    def image(cls, image: ImageSource, weight: float = 1.0) -> Query:
        return cls((Term(weight, image=image),))

    @classmethod
    def vector(cls, vector: Matrix, weight: float = 1.0) -> Query:
        """An embedding already at hand, e.g. a stored image's (search by a knowledge-base image)."""
        return cls((Term(weight, vector=np.asarray(vector, dtype=np.float32)),))

    @classmethod
    def of(cls, value: str | ImageSource | Query) -> Query:
        """A query from a string (text), a Query, or an image (path object, bytes or PIL image)."""
        if isinstance(value, Query):
            return value
        if isinstance(value, str):
            return cls.text(value)
        return cls.image(value)

    def __add__(self, other: Query) -> Query:
        return Query(self.terms + other.terms)

    def __sub__(self, other: Query) -> Query:
        return self + (-1.0) * other

    def __mul__(self, factor: float) -> Query:
        return Query(tuple(Term(t.weight * factor, t.text, t.image, t.vector) for t in self.terms))

    __rmul__ = __mul__

    def __neg__(self) -> Query:
        return self * -1.0

    @property
    def texts(self) -> list[str]:
        return [t.text for t in self.terms if t.text is not None]

    def with_texts(self, change: Callable[[str], str]) -> Query:
        """The same query with each text term's text passed through ``change``."""
        return Query(tuple(replace(t, text=change(t.text)) if t.text is not None else t for t in self.terms))

    def keyword_text(self) -> str:
        """The words the keyword channel looks up: the texts of the query's positive terms."""
        return " ".join(t.text for t in self.terms if t.text is not None and t.weight > 0)

    @property
    def has_image(self) -> bool:
        return any(t.image is not None for t in self.terms)

    def __str__(self) -> str:
        return " + ".join(t.describe() for t in self.terms)


class QueryEncoder:
    """Turns queries into unit vectors, caching text embeddings.

    Args:
        clip: the knowledge base's model.
        cache_size: how many distinct texts to keep.
    """

    def __init__(self, clip: ClipModel, cache_size: int = 4096) -> None:
        self.clip = clip
        self.cache: LruCache[str, Matrix] = LruCache(cache_size)

    @property
    def hits(self) -> int:
        """Texts served from the cache so far."""
        return self.cache.hits

    @property
    def misses(self) -> int:
        """Texts that had to be encoded so far."""
        return self.cache.misses

    def texts(self, texts: list[str]) -> Matrix:
        """Unit embeddings of ``texts``, from the cache where possible."""
        vectors = self.cache.get_many(texts, lambda missing: list(self.clip.encode_query_texts(missing)))
        return np.stack(vectors) if vectors else empty(self.clip.dim)

    def vector(self, query: Query) -> Matrix:
        """The query's unit vector.

        Raises:
            EmptyQueryError: no terms, or they cancel out.
            ImageError: an image term can't be decoded.
        """
        if not query.terms:
            msg = "the query is empty: give a text, an image, or both"
            raise EmptyQueryError(msg)
        text_terms = [t for t in query.terms if t.text is not None]
        image_terms = [t for t in query.terms if t.image is not None]
        total = np.zeros(self.clip.dim, dtype=np.float32)
        if text_terms:
            vectors = self.texts([t.text for t in text_terms if t.text is not None])
            total += np.asarray([t.weight for t in text_terms], dtype=np.float32) @ vectors
        if image_terms:
            vectors = self.clip.encode_images([t.image for t in image_terms if t.image is not None])
            total += np.asarray([t.weight for t in image_terms], dtype=np.float32) @ vectors
        for term in query.terms:
            if term.vector is not None:
                total += term.weight * term.vector
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            msg = f"the query's terms cancel out: {query}"
            raise EmptyQueryError(msg)
        return (total / norm).astype(np.float32)
