"""Zero-shot classification and image–text matching with CLIP.

**Classification.** Each label is embedded through several prompt templates ("a photo of a {}.", …) whose
unit embeddings are averaged and renormalised (prompt ensembling, as in the CLIP paper). Probabilities are
``softmax(logit_scale · cosine)`` over the labels, with the model's own learned logit scale. Label
embeddings are cached. An optional threshold answers "none of these" when no label is likely enough.

The softmax only compares the labels given: asked "cat or dog?" about a drawing of a square, it still gives
one of them most of the probability. So each label also gets its **absolute match**, the probability that the
label describes the image at all, on the same scale as search scores (:mod:`mmrag.search.scoring`: the model's
prior curve on centred cosines, 0 for words a closed-vocabulary model never learnt). When no label's match
reaches 0.5, :attr:`Classification.none_fit` says that none of them fits.

**Matching.** An image and a description get their cosine similarity and the same absolute match
probability; the verdict is ``match`` at probability ≥ 0.5. A description from outside the model's world
("a cat on a sofa" for the toy model) is judged "no match", not the best of a bad lot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mmrag.errors import ConfigError
from mmrag.files.images import ImageSource
from mmrag.kb.records import IMAGE, TEXT
from mmrag.model.clip import ClipModel
from mmrag.model.language import language_warning, scripts
from mmrag.search.cache import LruCache
from mmrag.search.query import Query
from mmrag.search.scoring import Scorer
from mmrag.vectors import Matrix, normalised_mean

EN_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a close-up photo of a {}.",
    "a photo of the {}.",
    "{}",
)
ZH_TEMPLATES: tuple[str, ...] = ("一张{}的照片", "{}的图片", "{}")
MAX_LABELS = 512
MATCH_AT = 0.5
"""An absolute match probability from which a description (or a label) is said to fit the image."""


@dataclass(frozen=True)
class LabelScore:
    """A label's softmax probability among the labels given, its cosine, and its absolute match."""

    label: str
    probability: float
    cosine: float
    match: float = 0.0


@dataclass
class Classification:
    """Labels with probabilities, best first. ``best`` is None when the threshold says "none of these"."""

    scores: list[LabelScore]
    best: str | None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, float]:
        return {s.label: s.probability for s in self.scores}

    @property
    def none_fit(self) -> bool:
        """No label describes the image (every absolute match below 0.5)."""
        return all(s.match < MATCH_AT for s in self.scores)


@dataclass(frozen=True)
class Match:
    """How well a description fits an image."""

    similarity: float
    probability: float
    verdict: bool
    warnings: tuple[str, ...] = ()


def templates_for(label: str, templates: Sequence[str] | None) -> Sequence[str]:
    """The given templates, or the defaults for the label's language (Chinese labels get Chinese ones)."""
    if templates is not None:
        return templates
    return ZH_TEMPLATES if "Han" in scripts(label) else EN_TEMPLATES


class ZeroShotClassifier:
    """Classify images into free-form labels, and match images with descriptions.

    Args:
        clip: the model.
        templates: prompt templates with one ``{}``; None picks English or Chinese ones per label.
        cache_size: label embeddings kept.
    """

    def __init__(
        self,
        clip: ClipModel,
        templates: Sequence[str] | None = None,
        cache_size: int = 4096,
        *,
        scorer: Scorer | None = None,
    ) -> None:
        if templates is not None and (not templates or any("{}" not in t for t in templates)):
            msg = "each prompt template must contain {} where the label goes, e.g. 'a photo of a {}.'"
            raise ConfigError(msg)
        self.clip = clip
        self.templates = tuple(templates) if templates is not None else None
        self.cache: LruCache[tuple[str, tuple[str, ...]], Matrix] = LruCache(cache_size)
        self.scorer = scorer or Scorer(clip)

    def label_vectors(self, labels: Sequence[str], templates: Sequence[str] | None = None) -> Matrix:
        """One unit vector per label: the renormalised mean of its templated prompts' embeddings."""
        chosen = [tuple(templates_for(label, templates or self.templates)) for label in labels]
        return np.stack(self.cache.get_many(list(zip(labels, chosen, strict=True)), self._ensembles))

    def _ensembles(self, keys: list[tuple[str, tuple[str, ...]]]) -> list[Matrix]:
        """Each (label, templates) as the normalised mean of its prompts, all prompts encoded in one call."""
        prompts = [t.format(label) for label, ts in keys for t in ts]
        vectors = self.clip.encode_query_texts(prompts)
        out, at = [], 0
        for _, ts in keys:
            out.append(normalised_mean(vectors[at : at + len(ts)]))
            at += len(ts)
        return out

    def classify(
        self,
        image: ImageSource | Matrix,
        labels: Sequence[str],
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        templates: Sequence[str] | None = None,
    ) -> Classification:
        """Probabilities of ``labels`` for ``image`` (a file, bytes, PIL image, or a stored unit vector).

        Args:
            top_k: keep only the k most likely labels (probabilities still sum over all labels).
            threshold: if the best probability is below it, ``best`` is None ("none of these").
            templates: override the classifier's templates for this call.

        Raises:
            ConfigError: fewer than 2 or more than 512 labels, or a bad top_k/threshold.
            ImageError: the image can't be read.
        """
        labels = _clean_labels(labels)
        if top_k is not None and top_k < 1:
            msg = f"top_k must be at least 1, got {top_k}"
            raise ConfigError(msg)
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            msg = f"threshold is a probability between 0 and 1, got {threshold}"
            raise ConfigError(msg)
        vector = self._image_vector(image)
        cosines = self.label_vectors(labels, templates) @ vector
        logits = self.clip.logit_scale * cosines
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        order = np.argsort(-probabilities, kind="stable")
        vectors = self.label_vectors(labels, templates)
        matches = [self._absolute(label, vectors[i], vector) for i, label in enumerate(labels)]
        scores = [LabelScore(labels[i], float(probabilities[i]), float(cosines[i]), matches[i]) for i in order]
        best = scores[0].label if threshold is None or scores[0].probability >= threshold else None
        warning = language_warning(labels, self.clip.label)
        return Classification(scores[:top_k] if top_k else scores, best, [warning] if warning else [])

    def match(self, image: ImageSource | Matrix, text: str) -> Match:
        """Similarity of ``image`` and ``text``, a match probability, and a verdict (see the module doc)."""
        if not text.strip():
            msg = "the description to match is empty"
            raise ConfigError(msg)
        vector = self._image_vector(image)
        readable = self.scorer.readable_query(Query.text(text)).texts[0]
        described = self.clip.encode_query_texts([readable])[0]
        probability = self._absolute(text, described, vector)
        warning = language_warning([text], self.clip.label)
        return Match(float(described @ vector), probability, probability >= MATCH_AT, (warning,) if warning else ())

    def _absolute(self, text: str, text_vector: Matrix, image_vector: Matrix) -> float:
        """P(the text describes the image), as search scores an image for a text query."""
        query = Query.text(text)
        _, centred = self.scorer.query_side(query, text_vector)
        probability = float(self.scorer.relevance(TEXT, centred, IMAGE, image_vector[None, :])[0])
        return probability * self.scorer.understood(query)

    def _image_vector(self, image: ImageSource | Matrix) -> Matrix:
        if isinstance(image, np.ndarray):
            vector: Matrix = image.astype(np.float32, copy=False)
            return vector
        encoded: Matrix = self.clip.encode_images([image])[0]
        return encoded


def _clean_labels(labels: Sequence[str]) -> list[str]:
    cleaned = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(cleaned) < 2:
        msg = f"give at least two distinct labels to choose between, got {cleaned}"
        raise ConfigError(msg)
    if len(cleaned) > MAX_LABELS:
        msg = f"at most {MAX_LABELS} labels, got {len(cleaned)}"
        raise ConfigError(msg)
    return cleaned
