"""The artifacts mmrag's tools return beside their text: typed, so that the agent and UIs read them safely.

A tool answers ``(content, artifact)``: the content is what the LLM reads; the artifact is for programs.
Search tools put their hits under ``"hits"`` (:class:`HitArtifact`), every tool its warnings under
``"warnings"``.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, cast

from mmrag.kb.records import IMAGE, TEXT
from mmrag.search.hits import Hit


class HitArtifact(TypedDict):
    """One hit as a tool artifact carries it (the JSON of :meth:`~mmrag.search.hits.Hit.to_json`, plus an
    image's thumbnail data URI)."""

    id: str
    modality: str
    source: str
    score: float
    z: float
    cosine: float
    content: NotRequired[str]
    chunk: NotRequired[int | None]
    caption: NotRequired[str]
    thumbnail: NotRequired[str]
    page: NotRequired[int]
    """The 0-based page of a PDF's chunk, figure or page image (LangChain's numbering; people see page + 1)."""
    matched: NotRequired[str]
    """The text inside the image (OCR) or its caption that matched the query."""


HIT_KEYS = frozenset({"id", "modality", "source", "score"})
"""The keys a hit in an artifact must have to be read back."""


class ToolArtifact(TypedDict, total=False):
    """What any of mmrag's tools returns as its artifact; each tool fills the keys it has."""

    hits: list[HitArtifact]
    warnings: list[str]
    query: str
    k: int
    image: dict[str, Any]
    text: str
    best: str | None
    labels: list[dict[str, Any]]
    similarity: float
    probability: float
    match: bool
    files: list[str]
    added: int
    updated: int
    unchanged: int
    skipped: list[dict[str, str]]


def hit_artifact(hit: Hit) -> HitArtifact:
    """A hit for an artifact."""
    data = cast("HitArtifact", hit.identity())
    if hit.modality == TEXT:
        chunk = hit.metadata.get("chunk")
        data["content"] = hit.document
        data["chunk"] = int(chunk) if isinstance(chunk, int | float) else None
    else:
        data["caption"] = hit.caption
        data["thumbnail"] = hit.document
        if hit.metadata.get("matched"):
            data["matched"] = str(hit.metadata["matched"])
    page = hit.metadata.get("page")
    if isinstance(page, int) and not isinstance(page, bool):
        data["page"] = page
    return data


def artifact_hits(artifact: object) -> list[HitArtifact]:
    """The hits in an artifact, or none (for artifacts from other tools, or none at all)."""
    hits = artifact.get("hits") if isinstance(artifact, dict) else None
    if not isinstance(hits, list):
        return []
    return [cast("HitArtifact", h) for h in hits if isinstance(h, dict) and h.keys() >= HIT_KEYS]


def artifact_warnings(artifact: object) -> list[str]:
    """The warnings in an artifact, or none."""
    warnings = artifact.get("warnings") if isinstance(artifact, dict) else None
    return [str(w) for w in warnings] if isinstance(warnings, list) else []


def is_image(hit: HitArtifact) -> bool:
    return hit["modality"] == IMAGE
