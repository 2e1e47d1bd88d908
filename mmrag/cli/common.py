"""The Typer command group (``cli``), the options every command shares, and output helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mmrag.config import Settings
from mmrag.files.paths import printable

cli = typer.Typer(
    name="mmrag",
    help="Multimodal RAG over images and text: CLIP embeddings, Chroma, LangChain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", help="open_clip name, hf-hub:ORG/REPO, local-dir:PATH or 'toy'. Env MMRAG_MODEL."),
]
PretrainedOpt = Annotated[
    str | None,
    typer.Option("--pretrained", help="Pretrained tag, checkpoint file, or 'random'. Env MMRAG_PRETRAINED."),
]
DbOpt = Annotated[
    Path | None, typer.Option("--db", help="Embedded knowledge base directory. Env MMRAG_DB.", show_default=False)
]
ChromaUrlOpt = Annotated[
    str | None,
    typer.Option("--chroma-url", help="A `chroma run` server, e.g. http://127.0.0.1:8000. Env MMRAG_CHROMA_URL."),
]


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
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, mps… Env MMRAG_DEVICE.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Items per forward pass. Env MMRAG_BATCH_SIZE.")] = None,
    max_megapixels: Annotated[
        float | None,
        typer.Option(help="Refuse larger images (decompression bombs). Env MMRAG_MAX_MEGAPIXELS."),
    ] = None,
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


def settings_from(ctx: typer.Context, *, one_query: bool = False, **overrides: Any) -> Settings:
    """Settings from the environment, then global options, then this command's own options.

    ``one_query``: the command encodes one query and exits, so with ``text_runtime=auto`` its text stays on
    torch: preparing ONNX Runtime (seconds) only pays off over many queries.
    """
    options = dict(ctx.obj or {})
    options.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings.from_env(**options)
    if one_query and settings.text_runtime == "auto":
        return settings.with_(text_runtime="torch")
    return settings


def emit(data: Any) -> None:
    """Print JSON (UTF-8, so 一只猫 stays readable)."""
    typer.echo(printable(json.dumps(data, ensure_ascii=False, indent=2)))
