"""Measure a toy CLIP checkpoint: zero-shot accuracy and text→image recall, in English and Chinese.

:func:`evaluate` loads a checkpoint exactly as a user would (open_clip's ``local-dir:``
path) and scores it on fresh drawings made with a seed the training pool never uses;
:class:`ToyReport` holds the figures and the quality bars a shipped checkpoint must meet.
:mod:`mmrag.toy.train` makes the checkpoint; ``mmrag toy-eval`` and
``scripts/build_toy.py`` print this report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.toy.shapes import CLASSES, EN_TEMPLATES, ZH_TEMPLATES, ToyClass, fill_en, fill_zh, make_dataset
from mmrag.toy.train import CONFIG_NAME, WEIGHTS_NAME, load_checkpoint

if TYPE_CHECKING:
    import torch

EVAL_SEED = 12345
"""Seed of the held-out drawings (training draws from string seeds, so never from this one)."""
EVAL_N_PER_CLASS = 10
RECALL_K = 5
ZERO_SHOT_BAR = 0.90
RECALL_BAR = 0.90

UNSEEN_EN_TEMPLATES: tuple[str, ...] = ("an image of {a} {colour} {shape}", "the {colour} {shape}")
"""English phrasings never used in training: they measure how the text tower generalises."""

UNSEEN_ZH_TEMPLATES: tuple[str, ...] = ("这是一个{colour}的{shape}", "{colour}的{shape}图案")
"""Chinese phrasings never used in training."""


@dataclass(frozen=True)
class ToyReport:
    """How well a toy checkpoint works, measured on a held-out set of drawings.

    The held-out set is ``n_per_class`` fresh drawings of each of the 24 classes, made
    with a seed the training pool never uses.

    Attributes:
        zero_shot_en: Zero-shot accuracy with English prompts: each image is given the
            class whose canonical caption (``"a red circle"``) has the most similar text
            embedding; the fraction of images classified correctly (colour and shape).
        zero_shot_zh: The same with Chinese prompts (``"一个红色的圆形"``).
        recall_at_5_en: Text-to-image retrieval with English queries. Every English
            caption template of every class is a query; the held-out images are ranked
            by cosine similarity, and the query scores ``hits / min(5, relevant)``, where
            hits counts images of the queried class among the top 5 and relevant is the
            number of held-out images of that class. The figure is the mean over queries
            (1.0 means the top 5 are always of the right class).
        recall_at_5_zh: The same with the Chinese caption templates as queries.
        zero_shot_unseen_en: Zero-shot accuracy with English phrasings that never
            appeared in training (:data:`UNSEEN_EN_TEMPLATES`), averaged over them.
        zero_shot_unseen_zh: The same for :data:`UNSEEN_ZH_TEMPLATES`.
        n_images: Size of the held-out set.
        parameters: Number of parameters of the model.
        checkpoint_bytes: Size of the weights file.
        steps: Training steps, from the checkpoint's config (None if not recorded).
        train_seconds: Training wall time, from the checkpoint's config (None if not recorded).
    """

    zero_shot_en: float
    zero_shot_zh: float
    recall_at_5_en: float
    recall_at_5_zh: float
    zero_shot_unseen_en: float
    zero_shot_unseen_zh: float
    n_images: int
    parameters: int
    checkpoint_bytes: int
    steps: int | None = None
    train_seconds: float | None = None

    def failures(self) -> list[str]:
        """The quality bars this checkpoint misses (empty when it meets them all)."""
        checks = [
            ("zero-shot accuracy (EN)", self.zero_shot_en, ZERO_SHOT_BAR),
            ("zero-shot accuracy (ZH)", self.zero_shot_zh, ZERO_SHOT_BAR),
            ("text→image recall@5 (EN)", self.recall_at_5_en, RECALL_BAR),
            ("text→image recall@5 (ZH)", self.recall_at_5_zh, RECALL_BAR),
        ]
        return [f"{name} {value:.3f} < {bar:.2f}" for name, value, bar in checks if value < bar]

    @property
    def ok(self) -> bool:
        """Whether every quality bar is met."""
        return not self.failures()

    def lines(self) -> list[str]:
        """The report as human-readable lines, one figure each."""
        out = [
            f"held-out images:           {self.n_images} (24 classes)",
            f"zero-shot accuracy EN:     {self.zero_shot_en:.3f}  (bar {ZERO_SHOT_BAR:.2f})",
            f"zero-shot accuracy ZH:     {self.zero_shot_zh:.3f}  (bar {ZERO_SHOT_BAR:.2f})",
            f"text→image recall@5 EN:    {self.recall_at_5_en:.3f}  (bar {RECALL_BAR:.2f})",
            f"text→image recall@5 ZH:    {self.recall_at_5_zh:.3f}  (bar {RECALL_BAR:.2f})",
            f"zero-shot, unseen EN text: {self.zero_shot_unseen_en:.3f}",
            f"zero-shot, unseen ZH text: {self.zero_shot_unseen_zh:.3f}",
            f"parameters:                {self.parameters:,}",
            f"checkpoint:                {self.checkpoint_bytes / 1e6:.1f} MB",
        ]
        if self.steps is not None:
            out.append(f"training steps:            {self.steps}")
        if self.train_seconds is not None:
            out.append(f"training time:             {self.train_seconds:.0f} s")
        return out


def _encode_texts(model: Any, tokenizer: Any, texts: Sequence[str]) -> torch.Tensor:
    features: torch.Tensor = model.encode_text(tokenizer(list(texts)), normalize=True)
    return features


def _zero_shot(image_features: torch.Tensor, labels: torch.Tensor, class_features: torch.Tensor) -> float:
    """Fraction of images whose most similar class text is their own class."""
    predicted = (image_features @ class_features.T).argmax(dim=1)
    return float((predicted == labels).float().mean())


def _recall_at_k(
    image_features: torch.Tensor, labels: torch.Tensor, query_features: torch.Tensor, query_labels: torch.Tensor
) -> float:
    """Mean over queries of ``hits in top k / min(k, relevant images)`` (see :class:`ToyReport`)."""
    k = min(RECALL_K, len(labels))
    top = (query_features @ image_features.T).topk(k, dim=1).indices
    hits = (labels[top] == query_labels[:, None]).sum(dim=1).float()
    relevant = (labels[None, :] == query_labels[:, None]).sum(dim=1).clamp(min=1, max=k).float()
    return float((hits / relevant).mean())


def evaluate(model_dir: Path, *, seed: int = EVAL_SEED, n_per_class: int = EVAL_N_PER_CLASS) -> ToyReport:
    """Measure a toy checkpoint on fresh drawings, loading it exactly as a user would.

    The model comes from ``open_clip.create_model_and_transforms("local-dir:<model_dir>")``
    and ``open_clip.get_tokenizer`` of the same name; images go through the model's own
    preprocess, and embeddings are L2-normalised. See :class:`ToyReport` for the figures.

    Args:
        model_dir: Directory holding ``open_clip_config.json`` and the weights.
        seed: Seed of the held-out drawings.
        n_per_class: Held-out drawings per class.

    Returns:
        The report.
    """
    import torch

    model, preprocess, tokenizer = load_checkpoint(model_dir)
    model.eval()
    dataset = make_dataset(n_per_class, seed)
    index = {cls: i for i, cls in enumerate(CLASSES)}
    labels = torch.tensor([index[cls] for _, cls in dataset])
    with torch.inference_mode():
        images = torch.stack([preprocess(image) for image, _ in dataset])
        image_features: torch.Tensor = model.encode_image(images, normalize=True)

        def accuracy(fill: Callable[[str, ToyClass], str], template: str) -> float:
            texts = [fill(template, cls) for cls in CLASSES]
            return _zero_shot(image_features, labels, _encode_texts(model, tokenizer, texts))

        def mean_accuracy(fill: Callable[[str, ToyClass], str], templates: Sequence[str]) -> float:
            return sum(accuracy(fill, t) for t in templates) / len(templates)

        def recall(fill: Callable[[str, ToyClass], str], templates: Sequence[str]) -> float:
            texts = [fill(t, cls) for t in templates for cls in CLASSES]
            query_labels = torch.arange(len(CLASSES)).repeat(len(templates))
            return _recall_at_k(image_features, labels, _encode_texts(model, tokenizer, texts), query_labels)

        zero_shot_en = accuracy(fill_en, EN_TEMPLATES[0])  # "a red circle": ToyClass.caption_en
        zero_shot_zh = accuracy(fill_zh, ZH_TEMPLATES[0])  # "一个红色的圆形": ToyClass.caption_zh
        unseen_en = mean_accuracy(fill_en, UNSEEN_EN_TEMPLATES)
        unseen_zh = mean_accuracy(fill_zh, UNSEEN_ZH_TEMPLATES)
        recall_en = recall(fill_en, EN_TEMPLATES)
        recall_zh = recall(fill_zh, ZH_TEMPLATES)

    meta = json.loads((model_dir / CONFIG_NAME).read_text(encoding="utf-8")).get("mmrag_toy", {})
    weights = model_dir / WEIGHTS_NAME
    return ToyReport(
        zero_shot_en=zero_shot_en,
        zero_shot_zh=zero_shot_zh,
        recall_at_5_en=recall_en,
        recall_at_5_zh=recall_zh,
        zero_shot_unseen_en=unseen_en,
        zero_shot_unseen_zh=unseen_zh,
        n_images=len(dataset),
        parameters=sum(p.numel() for p in model.parameters()),
        checkpoint_bytes=weights.stat().st_size if weights.is_file() else 0,
        steps=meta.get("steps"),
        train_seconds=meta.get("train_seconds"),
    )
