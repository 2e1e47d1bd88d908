"""Similar images: the one definition that the tools, the UI and the CLI share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from mmrag.defaults import DEFAULT_K, DEFAULT_THRESHOLD
from mmrag.files.images import ImageSource
from mmrag.search.hits import SearchResult
from mmrag.search.query import Query
from mmrag.search.searcher import Searcher
from mmrag.vectors import Matrix


def similar_images(
    searcher: Searcher,
    image: ImageSource | Matrix,
    *,
    k: int = DEFAULT_K,
    threshold: float = DEFAULT_THRESHOLD,
    exclude: Iterable[str] = (),
) -> SearchResult:
    """Knowledge-base images that look like ``image``, best first, on the same relevance scale as a search.

    Args:
        searcher: the knowledge base's searcher.
        image: an image (path, bytes, PIL image) or an embedding at hand (a stored image's vector).
        k: how many at most.
        threshold: minimum calibrated relevance, as for :meth:`Searcher.search`.
        exclude: ids and sources to leave out, typically the query image's own (it would rank first).

    Raises:
        ConfigError: a bad option.
        ImageError: the image can't be read.
    """
    excluded = {e for e in exclude if e}
    query = Query.vector(image) if isinstance(image, np.ndarray) else Query.image(image)
    result = searcher.search(query, k=k + len(excluded), modality="image", threshold=threshold)
    hits = [h for h in result.hits if h.id not in excluded and h.source not in excluded][:k]
    return replace(result, hits=hits)
