"""The retrieval issue's measured figures, on a smaller toy KB, asserted with margins.

``bench/retrieval_quality.py`` prints the full figures; these tests keep them from regressing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.config import Settings
from mmrag.factory import open_knowledge_base
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.search.zeroshot import ZeroShotClassifier
from mmrag.toy.demo import write_demo_folder
from tests.support.toyworld import (
    GappedClip,
    calibrated_figures,
    exactness,
    held_out_images,
    raw_cosine_figures,
    zero_shot_accuracy,
)

PER_CLASS = 3


@pytest.fixture(scope="module")
def gapped_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    root = tmp_path_factory.mktemp("gapped")
    write_demo_folder(root / "files", per_class=PER_CLASS)
    kb = open_knowledge_base(Settings.from_env({}, home=Path(root) / "home", model="toy"), clip=GappedClip())
    kb.sync(root / "files")
    return kb


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
