"""Per-modality score calibration: why a 0.31 image can beat a 0.78 text note.

CLIP puts texts close to texts (cosine 0.6-0.9) and far from images (0.2-0.35): the modality gap. Raw
cosines of different modalities are on different scales, so a mixed ranking by raw cosine returns only
text. mmrag calibrates each modality separately, per query:

1. For each modality keep a fixed random sample of its stored vectors (the *background*, up to
   ``sample_size``; refreshed when the collection's size changes).
2. For a query vector, the background cosines give that modality's typical score for *this* query: a
   robust centre (median) and spread (1.4826 × median absolute deviation).
3. A hit's ``z = (cosine - centre) / spread`` says how unusually close it is *within its own modality*.
   Its ``relevance = Φ(z)`` (the normal CDF) reads as "closer than this share of that modality's documents",
   a number on the same 0-1 scale for images and texts.

Ranking by ``z`` interleaves modalities by how exceptional each hit is, and a threshold on relevance
means the same in both. Within one modality the order is exactly the cosine order.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from mmrag.kb.store import Store
from mmrag.vectors import Matrix

MIN_SPREAD = 1e-3
"""A floor on the spread, so a tiny or uniform collection can't produce infinite z-scores."""


@dataclass(frozen=True)
class Background:
    """A modality's sampled vectors, and the collection size they were drawn at."""

    vectors: Matrix
    count: int


def normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


class Calibrator:
    """Computes per-query, per-modality z-scores and relevances from a cached background sample.

    Args:
        store: the store whose collections are sampled.
        sample_size: vectors kept per modality (all of them when the collection is smaller).
        seed: makes the sample, and so every score, reproducible.
    """

    def __init__(self, store: Store, *, sample_size: int = 2048, seed: int = 0) -> None:
        self.store = store
        self.sample_size = sample_size
        self.seed = seed
        self._backgrounds: dict[str, Background] = {}
        self._lock = threading.Lock()

    def background(self, modality: str) -> Background:
        """The sample for one modality (drawn on first use and whenever the collection's size changed)."""
        count = self.store.count(modality)
        cached = self._backgrounds.get(modality)
        if cached is not None and cached.count == count:
            return cached
        with self._lock:
            vectors = self.store.sample_vectors(modality, self.sample_size, seed=self.seed)
            background = Background(vectors, count)
            self._backgrounds[modality] = background
            return background

    def centre_and_spread(self, modality: str, query: Matrix) -> tuple[float, float]:
        """The robust centre and spread of the query's cosines against the modality's background."""
        sample = self.background(modality).vectors
        if len(sample) == 0:
            return 0.0, 1.0
        # einsum, not BLAS: OpenBLAS would wake a second thread for this small product, and that thread keeps
        # spinning on a core that the next query's text tower needs (measured: +6 ms per query on 2 cores).
        cosines = np.einsum("ij,j->i", sample, query)
        centre = float(np.median(cosines))
        spread = 1.4826 * float(np.median(np.abs(cosines - centre)))
        return centre, max(spread, MIN_SPREAD)

    def z_scores(self, modality: str, query: Matrix, cosines: Matrix) -> Matrix:
        return robust_z(cosines, *self.centre_and_spread(modality, query))


def robust_z(cosines: Matrix | list[float], centre: float, spread: float) -> Matrix:
    """How many robust standard deviations each cosine lies above its modality's centre."""
    return ((np.asarray(cosines, dtype=np.float32) - centre) / spread).astype(np.float32)
