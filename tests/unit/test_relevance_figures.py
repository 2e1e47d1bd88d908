"""The relevance issue's figures, on fewer knowledge bases than the bench builds, asserted with margins.

``bench/retrieval_quality.py`` prints the full figures (20 small KBs, with and without the simulated gap); this
keeps them from regressing on 3 KBs, with the toy and with the gap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.model.clip import ClipModel
from tests.support.relevance import match_figures, measure
from tests.support.toyworld import GappedClip


@pytest.mark.parametrize("gap", [False, True], ids=["toy", "toy+gap"])
def test_absolute_relevance_figures(tmp_path: Path, toy_clip: ClipModel, gap: bool) -> None:
    figures = measure(tmp_path, clip=GappedClip(toy_clip) if gap else toy_clip, kbs=3, seed=11)
    assert figures.absent_abstention >= 0.9, figures
    assert figures.present_recall >= 0.9, figures
    assert figures.out_of_world >= 0.9, figures
    assert figures.shown_precision >= 0.85, figures
    assert figures.ece <= 0.15, figures


def test_match_figures(toy_clip: ClipModel) -> None:
    out_of_world, in_world, _, _ = match_figures(toy_clip, per_class=1)
    assert out_of_world >= 0.9
    assert in_world >= 0.85
