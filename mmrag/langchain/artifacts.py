"""The artifacts mmrag's LangChain tools return beside their text (defined with the tool specs, in
:mod:`mmrag.tools.artifacts`, and named here for LangChain users and the agent)."""

from __future__ import annotations

from mmrag.tools.artifacts import (
    HIT_KEYS,
    HitArtifact,
    ToolArtifact,
    artifact_hits,
    artifact_warnings,
    hit_artifact,
    is_image,
)

__all__ = ["HIT_KEYS", "HitArtifact", "ToolArtifact", "artifact_hits", "artifact_warnings", "hit_artifact", "is_image"]
