"""The tool set: the five read-only tools, and the opt-in tool that adds files."""

from __future__ import annotations

from mmrag.tools.add import ADD_TO_KNOWLEDGE_BASE
from mmrag.tools.images import CLASSIFY_IMAGE, MATCH_IMAGE_TEXT
from mmrag.tools.search import FIND_SIMILAR_IMAGES, SEARCH_IMAGES, SEARCH_KNOWLEDGE_BASE
from mmrag.tools.specs import ToolSpec

READ_ONLY_TOOLS: tuple[ToolSpec, ...] = (
    SEARCH_KNOWLEDGE_BASE,
    SEARCH_IMAGES,
    FIND_SIMILAR_IMAGES,
    CLASSIFY_IMAGE,
    MATCH_IMAGE_TEXT,
)
"""The five tools every surface offers, in this order."""


def tool_specs(*, allow_add: bool = False) -> tuple[ToolSpec, ...]:
    """The five read-only tools, plus ``add_to_knowledge_base`` when ``allow_add``."""
    return (*READ_ONLY_TOOLS, ADD_TO_KNOWLEDGE_BASE) if allow_add else READ_ONLY_TOOLS
