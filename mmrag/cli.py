"""The ``mmrag`` command: parse arguments, call the library, print, and map errors to exit codes.

Exit codes: 0 success, 1 an mmrag error (message on stderr) or an interruption, 2 bad usage.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mmrag.config import Settings
from mmrag.errors import MmragError

app = typer.Typer(
    name="mmrag",
    help="Multimodal RAG over images and text: CLIP embeddings, Chroma, LangChain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.callback()
def _options(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(help="open_clip name, hf-hub:ORG/REPO, local-dir:PATH or 'toy'. Env MMRAG_MODEL."),
    ] = None,
    pretrained: Annotated[
        str | None,
        typer.Option(help="Pretrained tag, checkpoint file, or 'random'. Env MMRAG_PRETRAINED."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, mps… Env MMRAG_DEVICE.")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Items per forward pass. Env MMRAG_BATCH_SIZE.")
    ] = None,
    max_megapixels: Annotated[
        float | None,
        typer.Option(help="Refuse larger images (decompression bombs). Env MMRAG_MAX_MEGAPIXELS."),
    ] = None,
) -> None:
    ctx.obj = dict(
        model=model,
        pretrained=pretrained,
        device=device,
        batch_size=batch_size,
        max_megapixels=max_megapixels,
    )


def _settings(ctx: typer.Context) -> Settings:
    return Settings.from_env(**(ctx.obj or {}))


def _emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@app.command()
def info(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Load the model and show what it is: dimension, device, context length, image size."""
    from mmrag.app import build_clip

    clip = build_clip(_settings(ctx))
    data = {
        "model": clip.label,
        "dim": clip.dim,
        "device": clip.device,
        "context_length": clip.context_length,
        "image_size": clip.image_size,
        "logit_scale": round(clip.logit_scale, 4),
    }
    if as_json:
        _emit(data)
    else:
        for key, value in data.items():
            typer.echo(f"{key:15} {value}")


@app.command()
def embed(
    ctx: typer.Context,
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed.")] = None,
    image: Annotated[
        list[Path] | None, typer.Option("--image", "-i", help="An image file (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed texts and images; bad images are skipped and reported, the rest are kept."""
    from mmrag.app import build_clip

    clip = build_clip(_settings(ctx))
    rows: list[dict[str, Any]] = []
    if texts:
        for text, vector in zip(texts, clip.encode_texts(texts), strict=True):
            rows.append({"modality": "text", "input": text, "embedding": vector.tolist()})
    skipped: list[dict[str, str]] = []
    if image:
        result = clip.try_encode_images([str(p) for p in image])
        for index, vector in zip(result.indices, result.vectors, strict=True):
            rows.append({"modality": "image", "input": str(image[index]), "embedding": vector.tolist()})
        skipped = [{"source": f.source, "reason": str(f.error)} for f in result.failures]
    if as_json:
        _emit({"model": clip.label, "embeddings": rows, "skipped": skipped})
    else:
        for row in rows:
            head = ", ".join(f"{x:+.4f}" for x in row["embedding"][:4])
            typer.echo(f"{row['modality']:5} dim={len(row['embedding'])} [{head}, …]  {row['input']}")
    for item in skipped:
        typer.echo(f"skipped {item['source']}: {item['reason']}", err=True)


@app.command("toy-eval")
def toy_eval(as_json: JsonFlag = False) -> None:
    """Evaluate the shipped toy CLIP on freshly drawn held-out shapes (EN and ZH figures)."""
    from mmrag.toy import checkpoint_dir
    from mmrag.toy.train import evaluate

    report = evaluate(checkpoint_dir())
    if as_json:
        from dataclasses import asdict

        _emit(asdict(report))
    else:
        for line in report.lines():
            typer.echo(line)


def main() -> None:
    """Entry point of the ``mmrag`` console script."""
    try:
        app()  # standalone: click prints usage errors and exits 2
    except MmragError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(1)
