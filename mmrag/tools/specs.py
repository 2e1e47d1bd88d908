"""The tool specs: one definition of each tool, which the LangChain tools and the MCP server both adapt.

A :class:`ToolSpec` is a name, a description and an argument model written for the LLM, whether the tool only
reads, and an implementation ``run(context, args) -> ToolResult``. :func:`call_tool` validates arguments
and runs a spec; :func:`execute` runs one on arguments already validated. Neither raises for what the LLM can
correct: an invalid argument, a refused path or any :class:`~mmrag.errors.MmragError` becomes an error
:class:`~mmrag.tools.result.ToolResult` whose message the LLM reads (paths shown as
:mod:`mmrag.tools.paths` says).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from mmrag.errors import MmragError
from mmrag.tools.context import ToolContext
from mmrag.tools.result import ToolResult


@dataclass(frozen=True)
class ToolSpec:
    """One tool, independent of the surface that offers it.

    Attributes:
        name: the tool's name, e.g. ``search_images``.
        title: a short human title (MCP clients show it).
        description: what the LLM reads to decide when to call it.
        args_schema: the pydantic model of its arguments (descriptions and limits for the LLM).
        run: the implementation; it may raise :class:`~mmrag.errors.MmragError`.
        read_only: it changes nothing (MCP ``readOnlyHint``).
    """

    name: str
    title: str
    description: str
    args_schema: type[BaseModel]
    run: Callable[[ToolContext, Any], ToolResult]
    read_only: bool = True


def execute(spec: ToolSpec, context: ToolContext, args: BaseModel) -> ToolResult:
    """Run ``spec`` on validated ``args``; mmrag's errors come back as an error result (paths redacted)."""
    try:
        return spec.run(context, args)
    except MmragError as e:
        return ToolResult.error(context.view.redact(str(e), keep=_strings(args.model_dump())))


def _strings(value: object) -> list[str]:
    """Every string in a call's arguments."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def call_tool(spec: ToolSpec, context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
    """Validate ``arguments`` against ``spec.args_schema``, then run it (see :func:`execute`)."""
    from mmrag.tools.schemas import validation_message

    try:
        args = spec.args_schema.model_validate(dict(arguments))
    except ValidationError as e:
        return ToolResult.error(validation_message(e))
    return execute(spec, context, args)
