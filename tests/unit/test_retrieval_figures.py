"""The retrieval issue's measured figures, on a smaller toy KB, asserted with margins.

``bench/retrieval_quality.py`` prints the full figures; these tests keep them from regressing.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmrag.config import Settings
from mmrag.factory import open_knowledge_base
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from mmrag.search.zeroshot import ZeroShotClassifier
from mmrag.toy.demo import write_demo_folder
from mmrag.toy.shapes import CLASSES
from tests.support.toyworld import (
    GappedClip,
    calibrated_figures,
    class_queries,
    exactness,
    held_out_images,
    raw_cosine_figures,
    zero_shot_accuracy,
)

PER_CLASS = 3
CAPTIONS = [text for text, _ in class_queries()]  # 24 English and 24 Chinese class captions


def _kb(root: Path, clip: Any) -> KnowledgeBase:
    write_demo_folder(root / "files", per_class=PER_CLASS)
    kb = open_knowledge_base(Settings.from_env({}, home=root / "home", model="toy"), clip=clip)
    kb.sync(root / "files")
    return kb


@pytest.fixture(scope="module")
def gapped(toy_clip: ClipModel) -> GappedClip:
    return GappedClip(toy_clip)


@pytest.fixture(scope="module")
def gapped_kb(tmp_path_factory: pytest.TempPathFactory, gapped: GappedClip) -> KnowledgeBase:
    return _kb(tmp_path_factory.mktemp("gapped"), gapped)


@pytest.fixture(scope="module")
def plain_kb(tmp_path_factory: pytest.TempPathFactory, toy_clip: ClipModel) -> KnowledgeBase:
    return _kb(tmp_path_factory.mktemp("plain"), toy_clip)


@pytest.fixture(scope="module")
def drawings() -> list[Image.Image]:
    return [image for image, _ in held_out_images(2, seed=7)]


def _mean_off_diagonal(cosines: np.ndarray) -> float:
    n = len(cosines)
    return float((cosines.sum() - np.trace(cosines)) / (n * n - n))


# --- GappedClip: the simulated modality gap ------------------------------------------------


def test_gapped_clip_reproduces_real_clips_bands(
    toy_clip: ClipModel, gapped: GappedClip, drawings: list[Image.Image]
) -> None:
    raw_texts, raw_images = toy_clip.encode_texts(CAPTIONS), toy_clip.encode_images(drawings)
    # the toy alone has no gap: every band is near 0
    assert abs(_mean_off_diagonal(raw_texts @ raw_texts.T)) < 0.15
    assert abs(_mean_off_diagonal(raw_images @ raw_images.T)) < 0.15
    assert abs(float(np.mean(raw_texts @ raw_images.T))) < 0.15
    texts, images = gapped.encode_texts(CAPTIONS), gapped.encode_images(drawings)
    assert _mean_off_diagonal(texts @ texts.T) == pytest.approx(0.75, abs=0.07)
    assert _mean_off_diagonal(images @ images.T) == pytest.approx(0.5, abs=0.07)
    assert float(np.mean(texts @ images.T)) == pytest.approx(0.25, abs=0.07)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    # a shift, not noise: each text still matches its own drawings best (zero-shot by argmax)
    labels = np.repeat(np.arange(len(CLASSES)), 2)
    for half in (slice(0, len(CLASSES)), slice(len(CLASSES), None)):  # English, then Chinese
        assert np.mean((images @ texts[half].T).argmax(axis=1) == labels) >= 0.95


def test_gapped_clip_shifts_every_public_encode_path(
    toy_clip: ClipModel, gapped: GappedClip, drawings: list[Image.Image]
) -> None:
    encoders = {n for n, _ in inspect.getmembers(ClipModel, inspect.isfunction) if "encode" in n and n[0] != "_"}
    assert encoders == {"encode_texts", "encode_query_texts", "encode_images", "try_encode_images"}
    assert encoders <= set(vars(GappedClip)), "a ClipModel encoder GappedClip does not shift"

    texts = gapped.encode_texts(CAPTIONS[:4])
    assert np.allclose(gapped.encode_texts(CAPTIONS[:4], threads=1), texts, atol=1e-5)
    assert np.allclose(gapped.encode_query_texts(CAPTIONS[:4]), texts, atol=1e-5)
    images = gapped.encode_images(drawings[:3])
    assert np.allclose(gapped.try_encode_images(drawings[:3]).vectors, images, atol=1e-5)
    # shifted once from the wrapped model's vectors, never left as they are
    assert np.allclose(texts, _unit(toy_clip.encode_texts(CAPTIONS[:4]) + gapped.text_shift), atol=1e-5)
    assert np.allclose(images, _unit(toy_clip.encode_images(drawings[:3]) + gapped.image_shift), atol=1e-5)
    assert float(np.min(np.sum(texts * toy_clip.encode_texts(CAPTIONS[:4]), axis=1))) < 0.9


def test_gapped_clip_keeps_try_encode_images_bookkeeping(gapped: GappedClip, drawings: list[Image.Image]) -> None:
    progress: list[int] = []
    seen: list[int] = []
    result = gapped.try_encode_images(
        [drawings[0], b"not an image", drawings[1]],
        on_progress=progress.append,
        on_image=lambda i, _image: seen.append(i),
    )
    assert result.indices == [0, 2]
    assert [f.index for f in result.failures] == [1]
    assert np.allclose(result.vectors, gapped.encode_images(drawings[:2]), atol=1e-5)
    assert progress[-1] == 3
    assert sorted(seen) == [0, 2]
    assert gapped.encode_texts([]).shape == (0, gapped.dim)
    assert gapped.try_encode_images([]).vectors.shape == (0, gapped.dim)


def test_gapped_clip_is_the_wrapped_model_otherwise(toy_clip: ClipModel, gapped: GappedClip) -> None:
    assert gapped.clip is toy_clip
    assert gapped.label == toy_clip.label
    assert gapped.dim == toy_clip.dim == 64
    assert gapped.context_length == toy_clip.context_length
    assert gapped.image_size == toy_clip.image_size
    assert gapped.logit_scale == toy_clip.logit_scale
    assert gapped.device == toy_clip.device
    assert gapped.token_count("a red circle") == toy_clip.token_count("a red circle")
    assert repr(toy_clip) in repr(gapped)
    with pytest.raises(AttributeError):
        _ = gapped.no_such_attribute
    assert copy.copy(gapped).clip is toy_clip  # no endless lookups of a not-yet-set attribute


def test_a_gapped_kb_still_ranks_like_the_plain_one(gapped_kb: KnowledgeBase, plain_kb: KnowledgeBase) -> None:
    ours = calibrated_figures(gapped_kb.as_retriever().searcher, PER_CLASS)
    plain = calibrated_figures(plain_kb.as_retriever().searcher, PER_CLASS)
    assert plain.image_recall >= 0.95
    assert ours.image_recall >= plain.image_recall - 0.05
    assert ours.note_in_top >= plain.note_in_top - 0.2
    assert ours.queries == plain.queries == len(CAPTIONS)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


# --- the figures of the retrieval issue ----------------------------------------------------


def test_mixed_queries_find_images_despite_the_modality_gap(gapped_kb: KnowledgeBase) -> None:
    ours = calibrated_figures(gapped_kb.as_retriever().searcher, PER_CLASS)
    raw = raw_cosine_figures(gapped_kb, PER_CLASS)
    assert ours.image_recall >= 0.9  # the issue asks for 0.8
    assert ours.note_in_top >= 0.6  # text notes are still in the list
    assert raw.images_in_top <= 1.0  # one raw-cosine collection returns (almost) only text
    assert raw.image_recall <= 0.2


def test_ranks_match_brute_force(gapped_kb: KnowledgeBase) -> None:
    recall, identical, n = exactness(gapped_kb, gapped_kb.as_retriever().searcher)
    assert recall >= 0.99
    assert identical >= n - 1


def test_prompt_ensembling_is_no_worse_than_one_template(toy_clip: object) -> None:
    classifier = ZeroShotClassifier(toy_clip)  # type: ignore[arg-type]
    for blurred in (False, True):
        items = held_out_images(4, seed=99, blurred=blurred)
        ensemble = zero_shot_accuracy(classifier, items, None)
        for template in ("{}", "a photo of a {}."):
            assert ensemble >= zero_shot_accuracy(classifier, items, [template])
    assert zero_shot_accuracy(classifier, held_out_images(4, seed=99), None) >= 0.95
