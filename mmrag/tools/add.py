"""``add_to_knowledge_base``: add or refresh files that lie in the knowledge base's own folders (opt-in).

Offered only when the surface allows it (``mmrag mcp --allow-add``). Each path is confined like an image
argument (:func:`~mmrag.kb.guard.resolve_image_argument`: no URLs, ``..``, ``~``, hidden parts or symlinks
leading out), to the knowledge base's folders (:meth:`~mmrag.tools.context.ToolContext.folders`); nothing
outside them is read, and nothing is ever removed.
"""

from __future__ import annotations

from pathlib import Path

from mmrag.errors import DocumentError, ImageNotFoundError, PathNotAllowedError
from mmrag.kb.guard import resolve_image_argument
from mmrag.tools.artifacts import ToolArtifact
from mmrag.tools.context import ToolContext
from mmrag.tools.result import ToolResult
from mmrag.tools.schemas import AddInput
from mmrag.tools.specs import ToolSpec


def _confined(context: ToolContext, argument: str) -> Path:
    folders = context.folders()
    if not folders:
        msg = "the knowledge base has no folders yet; index one first (mmrag index FOLDER)"
        raise PathNotAllowedError(msg, argument)
    try:
        ref = resolve_image_argument(argument, roots=folders, store=None)
    except ImageNotFoundError as e:
        msg = f"no file {argument!r} in the knowledge base's folders; give a path as search results show sources"
        raise DocumentError(msg, argument) from e
    assert ref.path is not None  # store=None: only paths resolve
    return ref.path


def _add(context: ToolContext, args: AddInput) -> ToolResult:
    paths = list(dict.fromkeys(_confined(context, p) for p in args.paths))  # all confined before any is read
    report = context.kb.add_files(paths)
    view = context.view
    lines = [f"Added {len(paths)} file{'s' if len(paths) > 1 else ''}: {report.summary()}"]
    lines += [f"skipped {view.show(s.source)}: {view.redact(s.reason)}" for s in report.skipped]
    artifact = ToolArtifact(
        files=[p.as_posix() for p in paths],
        added=report.added,
        updated=report.updated,
        unchanged=report.unchanged,
        skipped=[{"source": s.source, "reason": s.reason} for s in report.skipped],
    )
    return ToolResult("\n".join(lines), artifact)


ADD_TO_KNOWLEDGE_BASE = ToolSpec(
    name="add_to_knowledge_base",
    title="Add files to the knowledge base",
    description=(
        "Add or refresh files (images, .txt, .md, .pdf) that are already inside the knowledge base's folders, "
        "so that searches find them. Only files in those folders are accepted; nothing is removed."
    ),
    args_schema=AddInput,
    run=_add,
    read_only=False,
)
