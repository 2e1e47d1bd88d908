"""CLI commands about the model: ``info``, ``embed``, ``toy-eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mmrag.cli.common import JsonFlag, cli, emit, settings_from


@cli.command()
def info(
    ctx: typer.Context,
    prepare: Annotated[
        bool,
        typer.Option(
            "--prepare",
            help="Export the text tower for ONNX Runtime now (once per model), so queries are fast from the first.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Load the model and show what it is: dimension, device, context length, image size, query text runtime."""
    from mmrag.factory import build_clip

    clip = build_clip(settings_from(ctx, text_runtime="onnx" if prepare else None))
    if prepare:
        clip.prepare_text_runtime()
    data = {
        "model": clip.label,
        "dim": clip.dim,
        "device": clip.device,
        "context_length": clip.context_length,
        "image_size": clip.image_size,
        "logit_scale": round(clip.logit_scale, 4),
        "text_runtime": clip.text_runtime_status,
    }
    if as_json:
        emit(data)
    else:
        for key, value in data.items():
            typer.echo(f"{key:15} {value}")


@cli.command()
def embed(
    ctx: typer.Context,
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed.")] = None,
    image: Annotated[list[Path] | None, typer.Option("--image", "-i", help="An image file (repeatable).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Embed texts and images; bad images are skipped and reported, the rest are kept."""
    from mmrag.factory import build_clip

    clip = build_clip(settings_from(ctx))
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
        emit({"model": clip.label, "embeddings": rows, "skipped": skipped})
    else:
        for row in rows:
            head = ", ".join(f"{x:+.4f}" for x in row["embedding"][:4])
            typer.echo(f"{row['modality']:5} dim={len(row['embedding'])} [{head}, …]  {row['input']}")
    for item in skipped:
        typer.echo(f"skipped {item['source']}: {item['reason']}", err=True)


@cli.command("toy-eval")
def toy_eval(as_json: JsonFlag = False) -> None:
    """Evaluate the shipped toy CLIP on freshly drawn held-out shapes (EN and ZH figures)."""
    from mmrag.toy import checkpoint_dir
    from mmrag.toy.report import evaluate

    report = evaluate(checkpoint_dir())
    if as_json:
        from dataclasses import asdict

        emit(asdict(report))
    else:
        for line in report.lines():
            typer.echo(line)
