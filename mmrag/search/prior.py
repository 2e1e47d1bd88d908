"""A model's score scale, learnt from the probe set: what a relevant cosine looks like, per pair of modalities.

:func:`measure_prior` encodes the probe (:mod:`mmrag.search.probe`) with the model and fits, for each pair of
query and document modality (``text>image``, ``text>text``, ``image>image``, ``image>text``), a logistic curve
``P(relevant | cosine) = σ(a · (cosine − b))`` on the probe's relevant pairs (same class) against its unrelated
ones (other classes, including near misses such as a red square for "a red circle"), weighted to even odds.

Cosines are centred first: each vector minus its modality's mean over the probe, normalised again. That
removes the near-constant offset between modalities (the modality gap, Liang et al. 2022) that squeezes real
CLIP's cross-modal cosines into a narrow band, so one curve fits both with and without a gap.

The prior is a pure function of the model's outputs: it is cached per model (see
:class:`mmrag.search.scoring.Scorer`) and needs no labels from the user.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from mmrag.kb.records import IMAGE, TEXT
from mmrag.search.probe import probe_set
from mmrag.vectors import Matrix

PRIOR_VERSION = 1
PAIRS = (f"{TEXT}>{IMAGE}", f"{TEXT}>{TEXT}", f"{IMAGE}>{IMAGE}", f"{IMAGE}>{TEXT}")
ANCHOR_TEXT = "a red circle"
ANCHOR_MATCH = 0.999
"""Cosine above which two anchors are the same model (text runtimes differ by ~1e-5; models by far more)."""


class Encoder(Protocol):
    """What the prior needs of a model (a :class:`~mmrag.model.clip.ClipModel` or a wrapper of one)."""

    label: str

    def encode_images(self, images: Any) -> Matrix: ...

    def encode_query_texts(self, texts: Any) -> Matrix: ...


@dataclass(frozen=True)
class Logistic:
    """``P(relevant | cosine) = σ(slope · (cosine − midpoint))``."""

    slope: float
    midpoint: float

    def __call__(self, cosines: Matrix | float) -> Matrix:
        x = np.clip(self.slope * (np.asarray(cosines, dtype=np.float64) - self.midpoint), -60.0, 60.0)
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


@dataclass(frozen=True)
class ModelPrior:
    """One model's score scale: each modality's mean vector, and a logistic per pair of modalities.

    Cosines are taken between vectors *centred* on their modality's probe mean: that removes the constant
    offset between modalities (the modality gap) that compresses raw cross-modal cosines into a narrow band.
    """

    label: str
    anchor: list[float]
    """The model's embedding of :data:`ANCHOR_TEXT`: a prior is for the model whose anchor matches it."""
    means: dict[str, list[float]]
    pairs: dict[str, Logistic]
    version: int = PRIOR_VERSION

    def matches(self, label: str, anchor: Matrix) -> bool:
        """Whether this prior was measured on the model with this label and anchor embedding."""
        mine = np.asarray(self.anchor, dtype=np.float32)
        return (
            self.version == PRIOR_VERSION
            and label == self.label
            and mine.shape == anchor.shape
            and float(mine @ anchor) >= ANCHOR_MATCH
        )

    def mean(self, modality: str) -> Matrix:
        return np.asarray(self.means[modality], dtype=np.float32)

    def centred(self, vectors: Matrix, modality: str) -> Matrix:
        """Unit vectors minus their modality's mean, normalised again (rows)."""
        return _centred(np.atleast_2d(np.asarray(vectors, dtype=np.float32)), self.mean(modality))

    def relevance(self, query_modality: str, doc_modality: str, centred_cosines: Matrix | float) -> Matrix:
        """P(relevant) of centred cosines between a query of one modality and documents of another."""
        return self.pairs[f"{query_modality}>{doc_modality}"](centred_cosines)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ModelPrior:
        data = json.loads(text)
        return cls(
            label=data["label"],
            anchor=[float(x) for x in data["anchor"]],
            means={k: [float(x) for x in v] for k, v in data["means"].items()},
            pairs={k: Logistic(**v) for k, v in data["pairs"].items()},
            version=int(data["version"]),
        )


def anchor(clip: Encoder) -> Matrix:
    """The model's embedding of :data:`ANCHOR_TEXT`, which tells two models (or two versions of one) apart."""
    return np.asarray(clip.encode_query_texts([ANCHOR_TEXT])[0], dtype=np.float32)


def measure_prior(clip: Encoder) -> ModelPrior:
    """Encode the probe with ``clip`` and fit its score scale (about 100 images and 310 texts)."""
    probe = probe_set()
    raw_images = clip.encode_images(probe.images)
    raw_texts = clip.encode_query_texts(probe.captions)
    means = {IMAGE: raw_images.mean(axis=0), TEXT: raw_texts.mean(axis=0)}
    images, texts = _centred(raw_images, means[IMAGE]), _centred(raw_texts, means[TEXT])
    ic = np.asarray(probe.image_classes)
    tc = np.asarray(probe.caption_classes)
    pairs = {
        f"{TEXT}>{IMAGE}": _fit(texts @ images.T, tc[:, None] == ic[None, :]),
        f"{TEXT}>{TEXT}": _fit_off_diagonal(texts @ texts.T, tc[:, None] == tc[None, :]),
        f"{IMAGE}>{IMAGE}": _fit_off_diagonal(images @ images.T, ic[:, None] == ic[None, :]),
        f"{IMAGE}>{TEXT}": _fit(images @ texts.T, ic[:, None] == tc[None, :]),
    }
    listed = {m: [float(x) for x in v] for m, v in means.items()}
    return ModelPrior(clip.label, [float(x) for x in anchor(clip)], listed, pairs)


def _fit_off_diagonal(cosines: Matrix, relevant: np.ndarray) -> Logistic:
    keep = ~np.eye(len(cosines), dtype=bool)
    return _fit(cosines[keep], relevant[keep])


def _fit(cosines: Matrix, relevant: np.ndarray) -> Logistic:
    """A weighted logistic regression of ``relevant`` on ``cosines``, the two classes at even weight (Newton)."""
    x = np.asarray(cosines, dtype=np.float64).ravel()
    y = np.asarray(relevant, dtype=np.float64).ravel()
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    w = np.where(y > 0, 0.5 / n_pos, 0.5 / n_neg)
    scale = float(np.std(x)) or 1.0
    xs = (x - x.mean()) / scale
    beta = np.zeros(2)
    ridge = 1e-4
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(beta[0] + beta[1] * xs, -60, 60)))
        g = np.array([np.sum(w * (p - y)), np.sum(w * (p - y) * xs)]) + ridge * beta
        h_diag = w * p * (1 - p)
        hessian = np.array([[h_diag.sum(), (h_diag * xs).sum()], [(h_diag * xs).sum(), (h_diag * xs * xs).sum()]])
        step = np.linalg.solve(hessian + ridge * np.eye(2), g)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    slope = beta[1] / scale
    midpoint = x.mean() - beta[0] * scale / beta[1] if beta[1] != 0 else float(x.mean())
    return Logistic(float(slope), float(midpoint))


def _centred(vectors: Matrix, mean: Matrix) -> Matrix:
    shifted = vectors - mean
    return np.asarray(shifted / np.maximum(np.linalg.norm(shifted, axis=1, keepdims=True), 1e-6), dtype=np.float32)
