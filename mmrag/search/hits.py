"""Search results: hits with their raw and calibrated scores, and the result of one search."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmrag.kb.records import TEXT, Metadata
from mmrag.vectors import Matrix

Modality = Literal["all", "image", "text"]


@dataclass(frozen=True)
class Hit:
    """One retrieved document with its raw and calibrated scores.

    Attributes:
        cosine: the raw cosine similarity to the query (not comparable across modalities).
        z: how many robust standard deviations above its modality's typical score for this query.
        relevance: Φ(z), between 0 and 1 and comparable across modalities: the ranking score.
        document: the chunk's text, or an image's thumbnail data URI.
    """

    id: str
    modality: str
    source: str
    cosine: float
    z: float
    relevance: float
    document: str
    metadata: Metadata
    embedding: Matrix | None = None

    @property
    def caption(self) -> str:
        return str(self.metadata.get("caption", ""))

    @property
    def text(self) -> str:
        """What a language model should read: the chunk, or the image's caption or file name."""
        if self.modality == TEXT:
            return self.document
        return self.caption or f"[image: {Path(self.source).name}]"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "modality": self.modality,
            "source": self.source,
            "score": round(self.relevance, 6),
            "z": round(self.z, 4),
            "cosine": round(self.cosine, 6),
        }
        if self.modality == TEXT:
            data.update(content=self.document, chunk=self.metadata.get("chunk"))
        else:
            data.update(caption=self.caption)
        return data


@dataclass
class SearchResult:
    """Hits, best first, with warnings (e.g. the query's language) and where the time went (seconds)."""

    hits: list[Hit]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
