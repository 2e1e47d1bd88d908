"""Vectors as mmrag passes them around: float32 arrays of unit rows, and plain float lists for LangChain."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

Matrix: TypeAlias = npt.NDArray[np.float32]
"""A (n, dim) float32 array of L2-normalised rows (or one such row)."""
Vector: TypeAlias = list[float]
"""One embedding as plain Python floats, the LangChain and Chroma convention."""


def unit_rows(values: Any) -> Matrix:
    """``values`` as float32 rows of length 1 (a zero row stays zero)."""
    array = np.asarray(values, dtype=np.float32)
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    unit: Matrix = (array / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def normalised_mean(rows: Any) -> Matrix:
    """The unit vector along the mean of ``rows`` (prompt ensembling, centroids)."""
    return unit_rows(np.asarray(rows, dtype=np.float32).mean(axis=0))


def empty(dim: int) -> Matrix:
    """A (0, dim) matrix: the result of encoding nothing."""
    return np.zeros((0, dim), dtype=np.float32)
