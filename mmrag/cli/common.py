"""The Typer command group (``cli``), the options every command shares, and output helpers.

The global options (:data:`GLOBAL_OPTIONS`: ``--model``, ``--pretrained``, ``--device``, ``--db``,
``--chroma-url``, ``--batch-size``, ``--max-megapixels``) work before the command (``mmrag --model toy search
…``) and after it (``mmrag search … --model toy``): :func:`add_global_options` gives every command its own copy
of them, and a value after the command wins over one before it.

This module is imported by every command, so it stays light: no numpy, torch, chromadb or LangChain.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mmrag.config import Settings
from mmrag.files.paths import printable

cli = typer.Typer(
    name="mmrag",
    help="Multimodal RAG over images and text: CLIP embeddings, Chroma, LangChain. "
    "Global options (--model, --db, …) go before or after the command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

GLOBAL_PANEL = "Global options"


class _Output:
    """How this run prints errors: as JSON when the command was given ``--json`` (set while parsing)."""

    json = False


OUTPUT = _Output()


def _note_json(value: bool) -> bool:
    if value:
        OUTPUT.json = True
    return value


JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON (errors too).", callback=_note_json)
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="open_clip name, hf-hub:ORG/REPO, local-dir:PATH or 'toy'. Env MMRAG_MODEL.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
PretrainedOpt = Annotated[
    str | None,
    typer.Option(
        "--pretrained",
        help="Pretrained tag, checkpoint file, or 'random'. Env MMRAG_PRETRAINED.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto, cpu, cuda, mps… Env MMRAG_DEVICE.", rich_help_panel=GLOBAL_PANEL)
]
BatchSizeOpt = Annotated[
    int | None,
    typer.Option("--batch-size", help="Items per forward pass. Env MMRAG_BATCH_SIZE.", rich_help_panel=GLOBAL_PANEL),
]
MaxMegapixelsOpt = Annotated[
    float | None,
    typer.Option(
        "--max-megapixels",
        help="Refuse larger images (decompression bombs). Env MMRAG_MAX_MEGAPIXELS.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Embedded knowledge base directory. Env MMRAG_DB.",
        show_default=False,
        rich_help_panel=GLOBAL_PANEL,
    ),
]
ChromaUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--chroma-url",
        help="A `chroma run` server, e.g. http://127.0.0.1:8000. Env MMRAG_CHROMA_URL.",
        rich_help_panel=GLOBAL_PANEL,
    ),
]

GLOBAL_OPTIONS: dict[str, Any] = {
    "model": ModelOpt,
    "pretrained": PretrainedOpt,
    "device": DeviceOpt,
    "batch_size": BatchSizeOpt,
    "max_megapixels": MaxMegapixelsOpt,
    "db": DbOpt,
    "chroma_url": ChromaUrlOpt,
}
"""The options every command takes, before or after its name: parameter name → its Typer annotation."""


def _show_version(value: bool) -> None:
    if value:
        from mmrag import __version__

        typer.echo(f"mmrag {__version__}")
        raise typer.Exit


@cli.callback()
def _options(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print mmrag's version and exit."),
    ] = False,
    model: ModelOpt = None,
    pretrained: PretrainedOpt = None,
    device: DeviceOpt = None,
    batch_size: BatchSizeOpt = None,
    max_megapixels: MaxMegapixelsOpt = None,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
) -> None:
    ctx.obj = dict(
        model=model,
        pretrained=pretrained,
        device=device,
        batch_size=batch_size,
        max_megapixels=max_megapixels,
        db=db,
        chroma_url=chroma_url,
    )


def add_global_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with the global options it lacks added to its signature (so Typer parses them after the
    command's name); their values go into the context object, over the ones given before the command.

    Options a command declares itself (``index --model``, ``search --db``…) are left as they are: the
    command reads them, and :func:`settings_from` already prefers them.
    """
    signature = inspect.signature(command, eval_str=True)
    extra = [name for name in GLOBAL_OPTIONS if name not in signature.parameters]
    if not extra:
        return command
    takes_ctx = "ctx" in signature.parameters

    @functools.wraps(command)
    def with_globals(**kwargs: Any) -> Any:
        given = {name: value for name in extra if (value := kwargs.pop(name)) is not None}
        ctx: typer.Context = kwargs["ctx"] if takes_ctx else kwargs.pop("ctx")
        if given:
            ctx.obj = {**(ctx.obj or {}), **given}
        return command(**kwargs)

    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=GLOBAL_OPTIONS[name])
        for name in extra
    ]
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
    first = [p for p in params if p.name == "ctx"]
    first = first or [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]
    rest = [p for p in params if p.name != "ctx"]
    with_globals.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*first, *rest, *added]
    )
    with_globals.__annotations__ = {p.name: p.annotation for p in [*first, *rest, *added]}
    return with_globals


def settings_from(ctx: typer.Context, *, one_query: bool = False, **overrides: Any) -> Settings:
    """Settings from the environment, then global options, then this command's own options.

    ``one_query``: the command encodes one query and exits, so with ``text_runtime=auto`` its texts run on
    ONNX Runtime only if the export is already cached (``cached``): exporting (seconds) only pays off over
    many queries.
    """
    options = dict(ctx.obj or {})
    options.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings.from_env(**options)
    if one_query and settings.text_runtime == "auto":
        return settings.with_(text_runtime="cached")
    return settings


def read_stdin_if_dash(value: str, what: str) -> str:
    """``value``, or all of stdin (stripped) when it is ``-``.

    Raises:
        typer.BadParameter: stdin is empty.
    """
    if value != "-":
        return value
    text = sys.stdin.read().strip()
    if not text:
        msg = f"the {what} is '-' (read from stdin), but stdin is empty"
        raise typer.BadParameter(msg)
    return text


def emit(data: Any) -> None:
    """Print JSON (UTF-8, so 一只猫 stays readable)."""
    typer.echo(printable(json.dumps(data, ensure_ascii=False, indent=2)))


def emit_error(message: str, kind: str, **extra: Any) -> None:
    """An error as ``--json`` prints it: ``{"error": …, "type": …}`` on stdout, so a script reading the JSON
    always gets one document (the exit code says it failed)."""
    emit({"error": message, "type": kind, **extra})
