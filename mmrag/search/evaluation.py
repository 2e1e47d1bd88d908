"""Retrieval evaluation on a user's labelled queries: ranking quality, abstention and calibration.

A labelled query names what should come back, or ``none`` when nothing in the knowledge base is relevant::

    {"query": "a red circle", "relevant": ["images/red_circle_*", "notes/red_circle.md"]}
    {"query": "一只猫", "relevant": "none"}

as JSON lines, or as CSV with the columns ``query`` and ``relevant`` (entries separated by ``|``). An entry
matches a hit whose source path ends with it, or whose path (or file name) matches it as a glob pattern.

:func:`evaluate` runs each query once and reports, over what would be shown (hits at or above the threshold),
per modality, recall@k,
hit@k (a relevant document in the top k), MRR and nDCG@10; on the ``none`` queries the abstention precision and
recall at the threshold; the precision of what would be shown (hits at or above the threshold); and a
calibration table of score bins against the precision observed in each, with its expected calibration error.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mmrag.errors import ConfigError
from mmrag.kb.records import IMAGE, TEXT
from mmrag.search.searcher import Searcher

BINS = 10


@dataclass(frozen=True)
class LabelledQuery:
    """A query and the sources relevant to it (empty: nothing is)."""

    query: str
    relevant: tuple[str, ...]

    @property
    def expects_none(self) -> bool:
        return not self.relevant

    def is_relevant(self, source: str) -> bool:
        path = PurePosixPath(source.replace("\\", "/"))
        for entry in self.relevant:
            if str(path).endswith("/" + entry.lstrip("/")) or str(path) == entry:
                return True
            if fnmatch.fnmatch(str(path), "*/" + entry.lstrip("/")) or fnmatch.fnmatch(path.name, entry):
                return True
        return False


def read_queries(path: Path) -> list[LabelledQuery]:
    """Labelled queries from a JSON-lines or CSV file (see the module doc).

    Raises:
        ConfigError: the file can't be read, or a line lacks its query or relevant field.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        msg = f"cannot read the labelled queries in {path}: {e}"
        raise ConfigError(msg) from e
    rows: list[dict[str, Any]] = []
    if path.suffix.lower() == ".csv":
        rows = [dict(r) for r in csv.DictReader(text.splitlines())]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                msg = f"{path}, line {n}: not JSON ({e.msg})"
                raise ConfigError(msg) from e
    queries = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not str(row.get("query", "")).strip() or "relevant" not in row:
            msg = f"{path}, entry {n}: needs a 'query' and a 'relevant' field (a list of sources, or 'none')"
            raise ConfigError(msg)
        relevant = row["relevant"]
        if isinstance(relevant, str):
            relevant = [] if relevant.strip().lower() in ("none", "") else [r.strip() for r in relevant.split("|")]
        queries.append(LabelledQuery(str(row["query"]), tuple(str(r) for r in relevant if str(r).strip())))
    if not queries:
        msg = f"{path} holds no labelled queries"
        raise ConfigError(msg)
    return queries


@dataclass
class CalibrationBin:
    low: float
    high: float
    hits: int
    mean_score: float
    precision: float


@dataclass
class Report:
    """What :func:`evaluate` measured (see the module doc). Fractions are 0-1; None where undefined."""

    k: int
    threshold: float
    queries: int
    none_queries: int
    recall: dict[str, float | None] = field(default_factory=dict)
    success: dict[str, float | None] = field(default_factory=dict)
    """Share of queries with at least one relevant document in the top k (hit@k)."""
    mrr: dict[str, float | None] = field(default_factory=dict)
    ndcg10: dict[str, float | None] = field(default_factory=dict)
    abstention_precision: float | None = None
    abstention_recall: float | None = None
    shown_precision: float | None = None
    ece: float | None = None
    calibration: list[CalibrationBin] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    searcher: Searcher,
    queries: Sequence[LabelledQuery],
    *,
    k: int = 10,
    threshold: float = 0.8,
    keywords: bool = True,
) -> Report:
    """Run every labelled query and measure ranking, abstention and calibration at ``threshold``."""
    depth = max(k, 10)
    per: dict[str, dict[str, list[float]]] = {
        m: {"recall": [], "hit": [], "rr": [], "ndcg": []} for m in ("all", IMAGE, TEXT)
    }
    scored: list[tuple[float, bool]] = []
    abstained_right = abstained = 0
    shown = shown_relevant = 0
    none_queries = 0
    for lq in queries:
        hits = searcher.search(lq.query, k=depth, threshold=0.0, keywords=keywords).hits
        relevant = [lq.is_relevant(h.source) for h in hits]
        for h, r in zip(hits, relevant, strict=True):
            scored.append((h.relevance, r))
            if h.relevance >= threshold:
                shown += 1
                shown_relevant += r
        abstains = not any(h.relevance >= threshold for h in hits)
        abstained += abstains
        if lq.expects_none:
            none_queries += 1
            abstained_right += abstains
            continue
        total = _relevant_total(searcher, lq)
        for modality in ("all", IMAGE, TEXT):  # ranks of what would be shown: hits at or above the threshold
            keep = [
                (h, r)
                for h, r in zip(hits, relevant, strict=True)
                if modality in ("all", h.modality) and h.relevance >= threshold
            ]
            want = total.get(modality, 0)
            if want == 0:
                continue
            flags = [r for _, r in keep]
            per[modality]["recall"].append(sum(flags[:k]) / want)
            per[modality]["hit"].append(1.0 if any(flags[:k]) else 0.0)
            per[modality]["rr"].append(next((1.0 / (i + 1) for i, r in enumerate(flags) if r), 0.0))
            per[modality]["ndcg"].append(_ndcg(flags[:10], want))
    report = Report(k, threshold, len(queries), none_queries)
    for modality, values in per.items():
        report.recall[modality] = _mean(values["recall"])
        report.success[modality] = _mean(values["hit"])
        report.mrr[modality] = _mean(values["rr"])
        report.ndcg10[modality] = _mean(values["ndcg"])
    report.abstention_recall = abstained_right / none_queries if none_queries else None
    report.abstention_precision = abstained_right / abstained if abstained else None
    report.shown_precision = shown_relevant / shown if shown else None
    report.calibration, report.ece = calibration(scored)
    report.settings = {"k": k, "threshold": threshold, "keywords": keywords}
    return report


def _relevant_total(searcher: Searcher, lq: LabelledQuery) -> dict[str, int]:
    """How many stored documents of each modality the query counts as relevant."""
    totals = {"all": 0, IMAGE: 0, TEXT: 0}
    for modality in (IMAGE, TEXT):
        ids_by_source = searcher.store.metadatas(modality)
        n = sum(lq.is_relevant(str(meta.get("source", ""))) for meta in ids_by_source.values())
        totals[modality] = n
        totals["all"] += n
    return totals


def _ndcg(flags: Sequence[bool], total: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, r in enumerate(flags) if r)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(total, len(flags) or 10, 10)))
    return dcg / ideal if ideal else 0.0


def calibration(scored: Sequence[tuple[float, bool]]) -> tuple[list[CalibrationBin], float | None]:
    """(score, relevant) pairs in equal-width score bins, and the expected calibration error (hit-weighted
    gap between each bin's mean score and its observed precision; None with no pairs)."""
    if not scored:
        return [], None
    bins = []
    error = 0.0
    for b in range(BINS):
        low, high = b / BINS, (b + 1) / BINS
        inside = [(s, r) for s, r in scored if low <= s < high or (b == BINS - 1 and s == 1.0)]
        if not inside:
            continue
        mean = sum(s for s, _ in inside) / len(inside)
        precision = sum(r for _, r in inside) / len(inside)
        bins.append(CalibrationBin(low, high, len(inside), mean, precision))
        error += len(inside) / len(scored) * abs(mean - precision)
    return bins, error


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
