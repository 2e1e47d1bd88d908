"""The tools' arguments: pydantic models whose field descriptions are written for the LLM, and their limits.

Both surfaces use these models as they are: the LangChain tools as ``args_schema``, the MCP server as each
tool's ``inputSchema`` (``model_json_schema()``) and to validate the arguments of a call.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from mmrag.defaults import DEFAULT_K

HARD_MAX_K = 100
"""The schema's upper bound for ``k``; each tool set caps lower, at its ``max_k``."""
MAX_QUERY_CHARS = 1000
MAX_LABEL_CHARS = 200
MAX_ADD_FILES = 20
"""The most files one call of ``add_to_knowledge_base`` takes."""

IMAGE_HELP = (
    "The image: an image id such as 'img-0123456789abcdef01234567' from earlier search results (preferred), "
    "or the path of an image file inside the knowledge base's folders. URLs are not accepted."
)
K_HELP = f"How many results to return (default {DEFAULT_K}; large values are capped)."


class SearchInput(BaseModel):
    """Arguments of ``search_knowledge_base`` and ``search_images``."""

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What to look for, as a short description in words, e.g. 'a red circle' or '一个蓝色的星形'.",
    )
    k: int = Field(default=DEFAULT_K, ge=1, le=HARD_MAX_K, description=K_HELP)


class SimilarInput(BaseModel):
    """Arguments of ``find_similar_images``."""

    image: str = Field(min_length=1, description=IMAGE_HELP)
    k: int = Field(default=DEFAULT_K, ge=1, le=HARD_MAX_K, description=K_HELP)


class ClassifyInput(BaseModel):
    """Arguments of ``classify_image``."""

    image: str = Field(min_length=1, description=IMAGE_HELP)
    labels: list[str] = Field(
        min_length=2,
        description=(
            "The candidate labels to choose between, at least two, as short noun phrases, "
            "e.g. ['red circle', 'blue star', 'green square']. Probabilities are relative to these labels only."
        ),
    )


class MatchInput(BaseModel):
    """Arguments of ``match_image_text``."""

    image: str = Field(min_length=1, description=IMAGE_HELP)
    text: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="The description to check against the image, e.g. 'a red circle on a white background'.",
    )


class AddInput(BaseModel):
    """Arguments of ``add_to_knowledge_base`` (offered only when the server allows it)."""

    paths: list[str] = Field(
        min_length=1,
        max_length=MAX_ADD_FILES,
        description=(
            "Files to add or refresh (images, .txt, .md or .pdf), each a path inside the knowledge base's "
            "folders, relative to the folder as search results show sources (e.g. 'new_photo.jpg'), "
            f"at most {MAX_ADD_FILES} per call. Files elsewhere, URLs and hidden files are refused."
        ),
    )


def validation_message(error: Any) -> str:
    """A pydantic validation error as one line the LLM can act on (its reasons, never the values given)."""
    errors = error.errors() if hasattr(error, "errors") else []
    details = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())) or 'input'}: {e.get('msg')}" for e in errors)
    return f"invalid arguments: {details or error}"
