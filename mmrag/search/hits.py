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
        z: how many robust standard deviations above its modality's typical cosine for this query (within
            this knowledge base): how exceptional the hit is among its neighbours.
        relevance: the estimated probability that the hit is relevant to the query, on one scale for images
            and texts and for both channels; the ranking score (see :mod:`mmrag.search.scoring`).
        document: the chunk's text, or an image's thumbnail data URI.
        clip: the CLIP channel's relevance alone.
        keyword: the keyword channel's relevance alone (0 when no query word is in the document's text).
        matched: the query's keyword terms found in the document's text.
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
    clip: float = 0.0
    keyword: float = 0.0
    matched: tuple[str, ...] = ()

    @property
    def caption(self) -> str:
        return str(self.metadata.get("caption", ""))

    @property
    def text(self) -> str:
        """What a language model should read: the chunk, or the image's caption or file name."""
        if self.modality == TEXT:
            return self.document
        return self.caption or f"[image: {Path(self.source).name}]"

    def identity(self) -> dict[str, Any]:
        """What every output of a hit starts with (JSON, Documents, tool artifacts): ``id``, ``modality``,
        ``source`` and the rounded ``score``, ``z`` and ``cosine``."""
        return {
            "id": self.id,
            "modality": self.modality,
            "source": self.source,
            "score": round(self.relevance, 6),
            "z": round(self.z, 4),
            "cosine": round(self.cosine, 6),
        }

    def to_json(self) -> dict[str, Any]:
        data = self.identity()
        data["channels"] = {"clip": round(self.clip, 6), "keyword": round(self.keyword, 6)}
        if self.matched:
            data["matched"] = list(self.matched)
        if self.modality == TEXT:
            data.update(content=self.document, chunk=self.metadata.get("chunk"))
        else:
            data.update(caption=self.caption)
        return data


Reason = Literal["empty", "filtered", "irrelevant"]
"""Why a search came back empty: the knowledge base (or the modality asked for) holds nothing, the filter
excluded everything, or nothing held is relevant enough."""


@dataclass
class SearchResult:
    """Hits, best first, with warnings (e.g. the query's language) and where the time went (seconds).

    Attributes:
        reason: why there are no hits (None when there are some).
        unknown_words: words of the query that the model never learnt (closed-vocabulary models only).
    """

    hits: list[Hit]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reason: Reason | None = None
    query: str = ""
    unknown_words: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """A sentence saying why nothing came back ("" when there are hits)."""
        if self.reason is None:
            return ""
        if self.reason == "empty":
            return "the knowledge base is empty: index a folder of images and notes first"
        if self.reason == "filtered":
            return "no document matches the filter"
        what = f" {self.query}" if self.query else ""
        message = f"nothing in the knowledge base matches{what}"
        if self.unknown_words:
            unknown = ", ".join(self.unknown_words)
            message += f" (the model doesn't know the words: {unknown}; no caption, name or note has them)"
        return message
