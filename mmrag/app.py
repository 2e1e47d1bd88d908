"""The composition root: builds mmrag's objects from :class:`~mmrag.config.Settings`.

The CLI and the UI call these functions; nothing else constructs collaborators from settings.
"""

from __future__ import annotations

from mmrag.clip import ClipModel
from mmrag.config import Settings
from mmrag.embeddings import ClipEmbeddings


def build_clip(settings: Settings) -> ClipModel:
    """The CLIP model the settings name (not loaded yet)."""
    return ClipModel.from_settings(settings)


def build_embeddings(settings: Settings) -> ClipEmbeddings:
    """LangChain embeddings over the CLIP model the settings name."""
    return ClipEmbeddings(clip=build_clip(settings))
