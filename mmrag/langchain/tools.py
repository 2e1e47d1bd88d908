"""LangChain tools over a knowledge base, for agents: search, search images, similar images, classify, match.

Each tool is a thin adapter of one :class:`~mmrag.tools.specs.ToolSpec` (:mod:`mmrag.tools`, which the MCP
server adapts too): the same pydantic ``args_schema``, description, limits and confinement. It answers with
``response_format="content_and_artifact"``: a short text for the LLM (ids, scores, sources relative to the
knowledge base's folders, captions and passages) and an artifact for UIs (the same hits as dicts, with
absolute paths, ids, scores and image thumbnails).

Image arguments are confined (see :mod:`mmrag.kb.guard`): a knowledge-base image id, or a file under the
allowed roots. ``k`` is capped at ``max_k`` and labels at ``max_labels``. Anything refused, and any
:class:`~mmrag.errors.MmragError`, becomes a :class:`~langchain_core.tools.ToolException` whose message the
agent sees as the tool's result (``handle_tool_error=True``), so it can correct itself. Messages and contents
carry no absolute paths unless ``full_paths=True`` (see :mod:`mmrag.tools.paths`).

.. code-block:: python

    from mmrag import open_knowledge_base
    from mmrag.langchain.tools import make_tools

    tools = make_tools(open_knowledge_base(db="demo-kb"))
    message = tools[1].invoke({"name": "search_images", "args": {"query": "a red circle"}, "id": "1",
                               "type": "tool_call"})
    message.content, message.artifact["hits"][0]["source"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from mmrag.defaults import DEFAULT_MAX_K, DEFAULT_MAX_LABELS
from mmrag.tools.add import ADD_TO_KNOWLEDGE_BASE
from mmrag.tools.artifacts import ToolArtifact
from mmrag.tools.context import ToolContext, ToolKnowledgeBase
from mmrag.tools.images import CLASSIFY_IMAGE, MATCH_IMAGE_TEXT
from mmrag.tools.schemas import (
    HARD_MAX_K,
    MAX_LABEL_CHARS,
    MAX_QUERY_CHARS,
    AddInput,
    ClassifyInput,
    MatchInput,
    SearchInput,
    SimilarInput,
    validation_message,
)
from mmrag.tools.search import DATA_NOTE, FIND_SIMILAR_IMAGES, MAX_PASSAGE_CHARS, SEARCH_IMAGES, SEARCH_KNOWLEDGE_BASE
from mmrag.tools.specs import ToolSpec, execute

__all__ = [
    "DATA_NOTE",
    "HARD_MAX_K",
    "MAX_LABEL_CHARS",
    "MAX_PASSAGE_CHARS",
    "MAX_QUERY_CHARS",
    "AddInput",
    "AddToKnowledgeBaseTool",
    "ClassifyImageTool",
    "ClassifyInput",
    "FindSimilarImagesTool",
    "KnowledgeBaseTool",
    "MatchImageTextTool",
    "MatchInput",
    "SearchImagesTool",
    "SearchInput",
    "SearchKnowledgeBaseTool",
    "SimilarInput",
    "ToolContext",
    "ToolOutput",
    "make_tools",
]

ToolOutput = tuple[str, ToolArtifact]


class KnowledgeBaseTool(BaseTool):
    """Base of mmrag's tools: a :class:`~mmrag.tools.specs.ToolSpec` run over a
    :class:`~mmrag.tools.context.ToolContext`, content-and-artifact output, errors shown to the LLM.

    Subclasses set ``spec``; the name, description and ``args_schema`` are the spec's.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: ClassVar[ToolSpec]
    context: ToolContext = Field(exclude=True)
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], str] | None = True
    handle_validation_error: bool | str | Callable[[Any], str] | None = Field(
        default_factory=lambda: validation_message
    )

    def _run(self, **kwargs: Any) -> ToolOutput:
        result = execute(self.spec, self.context, self.spec.args_schema(**kwargs))
        if result.is_error:
            raise ToolException(result.text)
        return result.text, result.artifact


class SearchKnowledgeBaseTool(KnowledgeBaseTool):
    """Search images and text passages together, ranked on one calibrated relevance scale.

    Setup:
        Index a folder first: ``mmrag index FOLDER``.

    Instantiate:
        .. code-block:: python

            tool = SearchKnowledgeBaseTool(context=ToolContext.of(kb))   # or make_tools(kb)[0]

    Use:
        .. code-block:: python

            tool.invoke({"query": "a red circle", "k": 4})   # text for the LLM
            tool.invoke({"name": tool.name, "args": {"query": "a red circle"}, "id": "1", "type": "tool_call"})
            # -> ToolMessage(content=..., artifact={"query", "k", "hits": [{id, modality, source, score, ...}]})
    """

    spec: ClassVar[ToolSpec] = SEARCH_KNOWLEDGE_BASE
    name: str = SEARCH_KNOWLEDGE_BASE.name
    description: str = SEARCH_KNOWLEDGE_BASE.description
    args_schema: type[BaseModel] = SEARCH_KNOWLEDGE_BASE.args_schema


class SearchImagesTool(KnowledgeBaseTool):
    """Find images that match a description.

    Instantiate:
        .. code-block:: python

            tool = SearchImagesTool(context=ToolContext.of(kb))   # or make_tools(kb)[1]

    Use:
        .. code-block:: python

            tool.invoke({"query": "a blue star"})
    """

    spec: ClassVar[ToolSpec] = SEARCH_IMAGES
    name: str = SEARCH_IMAGES.name
    description: str = SEARCH_IMAGES.description
    args_schema: type[BaseModel] = SEARCH_IMAGES.args_schema


class FindSimilarImagesTool(KnowledgeBaseTool):
    """Find images that look like a given image (a knowledge-base id or a confined path).

    Instantiate:
        .. code-block:: python

            tool = FindSimilarImagesTool(context=ToolContext.of(kb))   # or make_tools(kb)[2]

    Use:
        .. code-block:: python

            tool.invoke({"image": "img-0123456789abcdef01234567", "k": 4})
    """

    spec: ClassVar[ToolSpec] = FIND_SIMILAR_IMAGES
    name: str = FIND_SIMILAR_IMAGES.name
    description: str = FIND_SIMILAR_IMAGES.description
    args_schema: type[BaseModel] = FIND_SIMILAR_IMAGES.args_schema


class ClassifyImageTool(KnowledgeBaseTool):
    """Zero-shot classification of one image into the given labels.

    Instantiate:
        .. code-block:: python

            tool = ClassifyImageTool(context=ToolContext.of(kb))   # or make_tools(kb)[3]

    Use:
        .. code-block:: python

            tool.invoke({"image": "img-0123456789abcdef01234567", "labels": ["red circle", "blue star"]})
    """

    spec: ClassVar[ToolSpec] = CLASSIFY_IMAGE
    name: str = CLASSIFY_IMAGE.name
    description: str = CLASSIFY_IMAGE.description
    args_schema: type[BaseModel] = CLASSIFY_IMAGE.args_schema


class MatchImageTextTool(KnowledgeBaseTool):
    """How well a description fits an image: similarity, match probability and verdict.

    Instantiate:
        .. code-block:: python

            tool = MatchImageTextTool(context=ToolContext.of(kb))   # or make_tools(kb)[4]

    Use:
        .. code-block:: python

            tool.invoke({"image": "img-0123456789abcdef01234567", "text": "a red circle"})
    """

    spec: ClassVar[ToolSpec] = MATCH_IMAGE_TEXT
    name: str = MATCH_IMAGE_TEXT.name
    description: str = MATCH_IMAGE_TEXT.description
    args_schema: type[BaseModel] = MATCH_IMAGE_TEXT.args_schema


class AddToKnowledgeBaseTool(KnowledgeBaseTool):
    """Add or refresh files inside the knowledge base's folders (not in :func:`make_tools`' default set).

    Instantiate:
        .. code-block:: python

            tool = AddToKnowledgeBaseTool(context=ToolContext.of(kb))   # or make_tools(kb, allow_add=True)[5]

    Use:
        .. code-block:: python

            tool.invoke({"paths": ["new_photo.jpg"]})
    """

    spec: ClassVar[ToolSpec] = ADD_TO_KNOWLEDGE_BASE
    name: str = ADD_TO_KNOWLEDGE_BASE.name
    description: str = ADD_TO_KNOWLEDGE_BASE.description
    args_schema: type[BaseModel] = ADD_TO_KNOWLEDGE_BASE.args_schema


_READ_ONLY: tuple[type[KnowledgeBaseTool], ...] = (
    SearchKnowledgeBaseTool,
    SearchImagesTool,
    FindSimilarImagesTool,
    ClassifyImageTool,
    MatchImageTextTool,
)


def make_tools(
    kb: ToolKnowledgeBase,
    *,
    roots: Iterable[str | Path] | None = None,
    max_k: int = DEFAULT_MAX_K,
    max_labels: int = DEFAULT_MAX_LABELS,
    full_paths: bool = False,
    allow_add: bool = False,
) -> list[BaseTool]:
    """The five tools over ``kb``: search_knowledge_base, search_images, find_similar_images, classify_image,
    match_image_text (and add_to_knowledge_base with ``allow_add``).

    Args:
        kb: the knowledge base.
        roots: folders whose image files the tools may read, besides the folders of the knowledge base's
            own images (see :mod:`mmrag.kb.guard`).
        max_k: the most results one call returns (larger ``k`` is capped).
        max_labels: the most labels one classification takes (more is refused).
        full_paths: show the LLM absolute paths and the knowledge base's location (by default, sources are
            relative to the knowledge base's folders; see :mod:`mmrag.tools.paths`).
        allow_add: add ``add_to_knowledge_base``, confined to the knowledge base's folders.

    Raises:
        ConfigError: a limit out of range.
    """
    context = ToolContext.of(kb, roots=roots, max_k=max_k, max_labels=max_labels, full_paths=full_paths)
    classes: tuple[type[KnowledgeBaseTool], ...] = (*_READ_ONLY, AddToKnowledgeBaseTool) if allow_add else _READ_ONLY
    return [cls(name=cls.spec.name, description=cls.spec.description, context=context) for cls in classes]
