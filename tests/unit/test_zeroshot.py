"""Zero-shot classification and image–text matching on the toy model (which means something)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mmrag.errors import ConfigError
from mmrag.model.clip import ClipModel
from mmrag.search.zeroshot import EN_TEMPLATES, ZeroShotClassifier
from mmrag.toy.shapes import CLASSES, draw

LABELS = [f"{c.colour.en} {c.shape.en}" for c in CLASSES]


@pytest.fixture(scope="module")
def classifier(toy_clip: ClipModel) -> ZeroShotClassifier:
    return ZeroShotClassifier(toy_clip)


def test_classifies_held_out_shapes(classifier: ZeroShotClassifier) -> None:
    rng = random.Random(2024)
    images = [(draw(c, rng, size=96), f"{c.colour.en} {c.shape.en}") for c in CLASSES for _ in range(2)]
    correct = sum(classifier.classify(img, LABELS).best == label for img, label in images)
    assert correct / len(images) >= 0.9


def test_probabilities_are_a_softmax_at_the_models_scale(classifier: ZeroShotClassifier) -> None:
    image = draw(CLASSES[5], random.Random(1), size=96)
    result = classifier.classify(image, ["green square", "green circle", "red star"])
    probs = [s.probability for s in result.scores]
    assert sum(probs) == pytest.approx(1.0, abs=1e-6)
    assert probs == sorted(probs, reverse=True)
    cosines = np.array([s.cosine for s in result.scores])
    logits = classifier.clip.logit_scale * cosines
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert result.best == "green square"


def test_top_k_and_none_of_these(classifier: ZeroShotClassifier) -> None:
    image = draw(CLASSES[0], random.Random(2), size=96)
    top = classifier.classify(image, LABELS, top_k=3)
    assert len(top.scores) == 3
    assert top.best == "red circle"
    unsure = classifier.classify(image, ["blue star", "green square"], threshold=0.999)
    assert unsure.best is None  # neither label fits a red circle well enough


def test_chinese_labels(classifier: ZeroShotClassifier) -> None:
    image = draw(CLASSES[8], random.Random(3), size=96)  # blue circle
    result = classifier.classify(image, ["蓝色的圆形", "红色的星形", "绿色的正方形"])
    assert result.best == "蓝色的圆形"
    assert result.warnings == []


def test_label_embeddings_are_cached(toy_clip: ClipModel, monkeypatch: pytest.MonkeyPatch) -> None:
    classifier = ZeroShotClassifier(toy_clip)
    image = toy_clip.encode_images([draw(CLASSES[0], random.Random(4), size=96)])[0]
    classifier.classify(image, LABELS)
    calls: list[int] = []
    original = toy_clip.encode_query_texts
    monkeypatch.setattr(toy_clip, "encode_query_texts", lambda texts: calls.append(len(texts)) or original(texts))
    classifier.classify(image, LABELS)
    assert calls == []
    classifier.classify(image, [*LABELS[:3], "pink hexagon"])
    assert calls == [len(EN_TEMPLATES)]  # only the new label's prompts


def test_ensembling_is_the_mean_of_template_embeddings(toy_clip: ClipModel) -> None:
    classifier = ZeroShotClassifier(toy_clip, templates=["a photo of a {}.", "{}"])
    [vector] = classifier.label_vectors(["red circle"])
    prompts = toy_clip.encode_texts(["a photo of a red circle.", "red circle"])
    mean = prompts.mean(axis=0)
    np.testing.assert_allclose(vector, mean / np.linalg.norm(mean), atol=1e-6)


def test_bad_inputs(toy_clip: ClipModel, classifier: ZeroShotClassifier) -> None:
    image = draw(CLASSES[0], random.Random(5), size=64)
    with pytest.raises(ConfigError, match="two distinct labels"):
        classifier.classify(image, ["cat", " cat ", ""])
    with pytest.raises(ConfigError, match="at most"):
        classifier.classify(image, [f"label {i}" for i in range(600)])
    with pytest.raises(ConfigError, match=r"\{\}"):
        ZeroShotClassifier(toy_clip, templates=["a photo"])
    with pytest.raises(ConfigError, match="empty"):
        classifier.match(image, "  ")


def test_match_verdicts(classifier: ZeroShotClassifier) -> None:
    image = draw(CLASSES[0], random.Random(6), size=96)  # red circle
    yes = classifier.match(image, "a red circle")
    no = classifier.match(image, "a blue star")
    assert yes.verdict
    assert not no.verdict
    assert yes.probability > 0.9 > 0.5 > no.probability
    assert yes.similarity > no.similarity
    assert classifier.match(image, "一个红色的圆形").verdict


def test_kb_image_vector_gives_the_same_answer(toy_clip: ClipModel, classifier: ZeroShotClassifier) -> None:
    image = draw(CLASSES[13], random.Random(8), size=96)
    vector = toy_clip.encode_images([image])[0]
    assert classifier.classify(vector, LABELS).as_dict() == pytest.approx(classifier.classify(image, LABELS).as_dict())
