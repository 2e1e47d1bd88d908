"""Measurement code for the toy world, shared by ``bench/retrieval_quality.py`` and the tests (not shipped).

The knowledge base is the toy demo folder (images of the 24 classes plus one note per class). A query is a
class caption (English or Chinese); its relevant documents are that class's images and its note.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from mmrag.kb.records import IMAGE, TEXT
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel, EncodedImages
from mmrag.search.fusion import with_each_modality
from mmrag.search.hits import Hit
from mmrag.search.query import Query
from mmrag.search.searcher import Searcher
from mmrag.search.zeroshot import ZeroShotClassifier
from mmrag.toy.shapes import CLASSES, draw
from mmrag.vectors import Matrix, unit_rows


class GappedClip:
    """A :class:`ClipModel` (the toy by default) with real CLIP's modality gap simulated on its outputs.

    The toy model has almost no modality gap: mean cosines are near 0 within and across modalities, so raw
    cosine happens to rank its images and notes fairly. Real CLIP's embeddings sit in two cones: texts near
    texts (about 0.75), images near images (about 0.5), texts far from images (about 0.25). Liang et al.
    (2022, "Mind the Gap") describe the gap as a near-constant shift between modalities, so this adds a fixed
    offset per modality and renormalises, reproducing those bands while keeping the toy's meaning.

    It wraps the model: every public encoder's output is shifted, and everything else (label, dim, tokens,
    logit scale…) is the wrapped model's.
    """

    def __init__(
        self,
        clip: ClipModel | None = None,
        *,
        text_shift: float = 1.73,
        image_shift: float = 1.0,
        shift_cosine: float = 0.41,
    ) -> None:
        self.clip = clip if clip is not None else ClipModel("toy", device="cpu", text_runtime="torch")
        rng = np.random.default_rng(0)
        g1, g2 = rng.normal(size=(2, self.clip.dim))
        g1 /= np.linalg.norm(g1)
        g2 -= (g2 @ g1) * g1
        g2 /= np.linalg.norm(g2)
        self.text_shift = (text_shift * g1).astype(np.float32)
        image_direction = shift_cosine * g1 + np.sqrt(1 - shift_cosine**2) * g2
        self.image_shift = (image_shift * image_direction).astype(np.float32)

    def __getattr__(self, name: str) -> Any:
        if name == "clip":  # not set yet (copy, pickle): no endless self.clip lookups
            raise AttributeError(name)
        return getattr(self.clip, name)

    def __repr__(self) -> str:
        return f"GappedClip({self.clip!r})"

    def encode_texts(self, texts: Sequence[str], *, threads: int | None = None) -> Matrix:
        return _shifted(self.clip.encode_texts(texts, threads=threads), self.text_shift)

    def encode_query_texts(self, texts: Sequence[str]) -> Matrix:
        return _shifted(self.clip.encode_query_texts(texts), self.text_shift)

    def encode_images(self, images: Sequence[Any]) -> Matrix:
        return _shifted(self.clip.encode_images(images), self.image_shift)

    def try_encode_images(self, images: Sequence[Any], on_progress: Any = None, on_image: Any = None) -> EncodedImages:
        result = self.clip.try_encode_images(images, on_progress=on_progress, on_image=on_image)
        return EncodedImages(_shifted(result.vectors, self.image_shift), result.indices, result.failures)


def _shifted(vectors: Matrix, shift: Matrix) -> Matrix:
    return unit_rows(vectors + shift) if len(vectors) else vectors


def class_of(source: str) -> str:
    """``red_circle_03.png`` → ``red_circle``; ``red_circle.md`` → ``red_circle``."""
    stem = Path(source).stem
    return stem.rsplit("_", 1)[0] if stem[-2:].isdigit() else stem


def class_queries() -> list[tuple[str, str]]:
    """(query, class) for every class, in English and in Chinese."""
    queries = [(c.caption_en, c.label.replace("-", "_")) for c in CLASSES]
    return queries + [(c.caption_zh, c.label.replace("-", "_")) for c in CLASSES]


@dataclass(frozen=True)
class MixedFigures:
    """Averages over the class queries of a top-k list of (modality, source)."""

    image_recall: float
    note_in_top: float
    images_in_top: float
    queries: int

    def line(self) -> str:
        return (
            f"image recall@10 {self.image_recall:.3f} | relevant note in top 10: {self.note_in_top:.0%} "
            f"| images in top 10: {self.images_in_top:.1f} ({self.queries} queries)"
        )


def mixed_figures(results: list[tuple[str, list[tuple[str, str]]]], per_class: int) -> MixedFigures:
    """Figures from (class, [(modality, source), …]) per query."""
    recalls, notes, images = [], [], []
    for cls, top in results:
        recalls.append(sum(m == IMAGE and class_of(s) == cls for m, s in top) / per_class)
        notes.append(1.0 if any(m == TEXT and class_of(s) == cls for m, s in top) else 0.0)
        images.append(sum(m == IMAGE for m, _ in top))
    return MixedFigures(statistics.mean(recalls), statistics.mean(notes), statistics.mean(images), len(results))


def calibrated_figures(searcher: Searcher, per_class: int, k: int = 10) -> MixedFigures:
    results = []
    for text, cls in class_queries():
        hits = searcher.search(text, k=k, threshold=0).hits
        results.append((cls, [(h.modality, h.source) for h in hits]))
    return mixed_figures(results, per_class)


def raw_cosine_figures(kb: KnowledgeBase, per_class: int, k: int = 10) -> MixedFigures:
    """One mixed collection ranked by raw cosine, as ``langchain_chroma.Chroma`` or Chroma's own would."""
    rows = {m: kb.store.get(m, list(kb.store.metadatas(m)), embeddings=True) for m in (IMAGE, TEXT)}
    everything = [(m, str(r.metadata["source"]), np.asarray(r.embedding)) for m in rows for r in rows[m]]
    matrix = np.stack([v for _, _, v in everything])
    results = []
    for text, cls in class_queries():
        cosines = matrix @ kb.clip.encode_texts([text])[0]
        top = np.argsort(-cosines)[:k]
        results.append((cls, [(everything[i][0], everything[i][1]) for i in top]))
    return mixed_figures(results, per_class)


def brute_force(kb: KnowledgeBase, searcher: Searcher, text: str, *, keywords: bool = False) -> list[Hit]:
    """Every stored document scored as the searcher scores a candidate, best first (numpy over all vectors)."""
    q = Query.text(text)
    vector = searcher.encoder.vector(searcher.scorer.readable_query(q))
    query_modality, centred = searcher.scorer.query_side(q, vector)
    understood = searcher.scorer.understood(q)
    found = {h.id: h for h in searcher.keywords.search(text, limit=10**6)} if keywords else {}
    scored: list[Hit] = []
    for m in (IMAGE, TEXT):
        rows = kb.store.get(m, list(kb.store.metadatas(m)), embeddings=True)
        matrix = np.stack([np.asarray(r.embedding) for r in rows])
        cosines = matrix @ vector
        zs = searcher.calibrator.z_scores(m, vector, cosines)
        for c, z, r in zip(cosines, zs, rows, strict=True):
            hit = Hit(r.id, m, "", float(c), float(z), 0.0, r.document, {}, np.asarray(r.embedding, dtype=np.float32))
            scored.append(searcher._scored(hit, query_modality, centred, understood, found.get(r.id)))
    scored.sort(key=lambda h: (h.relevance, h.keyword, h.z), reverse=True)
    return scored


def exactness(kb: KnowledgeBase, searcher: Searcher, k: int = 10) -> tuple[float, int, int]:
    """(mean recall@k of mmrag's CLIP channel against brute force, queries with an identical top-k, queries)."""
    overlaps, identical = [], 0
    queries = class_queries()
    for text, _ in queries:
        scored = brute_force(kb, searcher, text)
        exact = [h.id for h in with_each_modality(scored[:k], scored)]
        got = [h.id for h in searcher.search(text, k=k, threshold=0, keywords=False).hits]
        overlaps.append(len(set(exact) & set(got)) / k)
        identical += exact == got
    return statistics.mean(overlaps), identical, len(queries)


def held_out_images(per_class: int, *, seed: int, blurred: bool = False) -> list[tuple[Image.Image, int]]:
    """Fresh drawings (class index attached); ``blurred`` makes them 24 px and blurry, a harder set."""
    rng = random.Random(seed)
    items = []
    for i, c in enumerate(CLASSES):
        for _ in range(per_class):
            if blurred:
                small = draw(c, rng, size=24).resize((96, 96), Image.Resampling.NEAREST)
                items.append((small.filter(ImageFilter.GaussianBlur(3)), i))
            else:
                items.append((draw(c, rng, size=96), i))
    return items


def zero_shot_accuracy(
    classifier: ZeroShotClassifier, images: list[tuple[Image.Image, int]], templates: list[str] | None
) -> float:
    labels = [f"{c.colour.en} {c.shape.en}" for c in CLASSES]
    vectors = classifier.clip.encode_images([img for img, _ in images])
    correct = sum(
        classifier.classify(v, labels, templates=templates).best == labels[i]
        for v, (_, i) in zip(vectors, images, strict=True)
    )
    return correct / len(images)
