"""How one modality's hits join the other's: a quota of one per modality, and maximal marginal relevance."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmrag.kb.records import MODALITIES
from mmrag.search.hits import Hit


def with_each_modality(chosen: list[Hit], candidates: Sequence[Hit]) -> list[Hit]:
    """Make room for the best hit of a modality that the cut left out (a quota of one per modality).

    Scores are comparable, but a mixed answer is what users of a mixed knowledge base come for: if the top k
    is all images while a note passed the threshold too, the best note replaces the last image.
    """
    if len(chosen) < 2:
        return chosen
    present = {h.modality for h in chosen}
    for modality in MODALITIES:
        if modality in present:
            continue
        best = next((h for h in candidates if h.modality == modality), None)
        if best is None:
            continue
        majority = max(present, key=lambda m: sum(h.modality == m for h in chosen))
        drop = max(i for i, h in enumerate(chosen) if h.modality == majority)
        chosen = [*chosen[:drop], *chosen[drop + 1 :], best]
        present.add(modality)
    return sorted(chosen, key=lambda h: (h.relevance, h.keyword, h.z), reverse=True)


def mmr(hits: Sequence[Hit], k: int, lambda_mult: float) -> list[Hit]:
    """Maximal marginal relevance on calibrated relevance (so images and texts compete fairly)."""
    chosen: list[Hit] = []
    remaining = list(hits)
    while remaining and len(chosen) < k:
        best, best_score = 0, -np.inf
        for i, hit in enumerate(remaining):
            redundancy = max(
                (
                    float(hit.embedding @ c.embedding)
                    for c in chosen
                    if hit.embedding is not None and c.embedding is not None
                ),
                default=0.0,
            )
            score = lambda_mult * hit.relevance - (1 - lambda_mult) * redundancy
            if score > best_score:
                best, best_score = i, score
        chosen.append(remaining.pop(best))
    return chosen
