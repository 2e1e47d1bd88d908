"""What a tool call gives back, whatever the surface: text for the LLM, images, and an artifact for programs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmrag.tools.artifacts import ToolArtifact
from mmrag.tools.paths import PathView


@dataclass(frozen=True)
class ToolImage:
    """An image the LLM may look at (a hit's stored thumbnail, at most 160 px a side).

    Attributes:
        caption: the line that names it for the LLM, e.g. ``[1] img-… red_circle_01.png``.
        data: the encoded image.
        mime_type: its type.
    """

    caption: str
    data: bytes
    mime_type: str = "image/jpeg"


@dataclass(frozen=True)
class ToolResult:
    """One tool call's outcome.

    Attributes:
        text: what the LLM reads (sources shown relative; see :mod:`mmrag.tools.paths`); for an error, the message.
        artifact: the same facts for programs (absolute sources, thumbnails); empty for an error.
        images: images for surfaces that can send them (MCP image content); the LangChain tools leave them.
        is_error: the call failed; ``text`` says why, so that the LLM can correct itself.
    """

    text: str
    artifact: ToolArtifact
    images: tuple[ToolImage, ...] = ()
    is_error: bool = False

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(message, ToolArtifact(), is_error=True)

    def structured(self, view: PathView) -> dict[str, Any]:
        """The artifact as the LLM may see it (MCP ``structuredContent``): sources shown through ``view``, and
        no thumbnails (the images go as image content)."""
        data: dict[str, Any] = dict(self.artifact)
        if "hits" in data:
            data["hits"] = [
                {key: view.show(str(v)) if key == "source" else v for key, v in hit.items() if key != "thumbnail"}
                for hit in self.artifact.get("hits", [])
            ]
        if "image" in data:
            image = dict(self.artifact.get("image", {}))
            image["source"] = view.show(str(image.get("source", "")))
            image["argument"] = view.redact(str(image.get("argument", "")))
            data["image"] = image
        if "skipped" in data:
            data["skipped"] = [
                {"source": view.show(str(s.get("source", ""))), "reason": view.redact(str(s.get("reason", "")))}
                for s in self.artifact.get("skipped", [])
            ]
        if "warnings" in data:
            data["warnings"] = [view.redact(w) for w in self.artifact.get("warnings", [])]
        return data
