"""CLI commands for the knowledge base: ``index``, ``status``, ``remove``, ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mmrag.cli.common import (
    OUTPUT,
    ChromaUrlOpt,
    DbOpt,
    JsonFlag,
    ModelOpt,
    PretrainedOpt,
    cli,
    emit,
    emit_error,
    settings_from,
)

if TYPE_CHECKING:
    from mmrag.kb.report import SyncProgress, SyncReport


class _ProgressBar:
    """A tqdm bar (files/s, ETA) on stderr, fed by the library's progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, progress: SyncProgress) -> None:
        if not self.enabled:
            return
        if progress.done == 0:
            typer.echo(f"found {progress.found} files; {progress.total} to embed", err=True)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=progress.total, unit="file", desc="embedding", leave=False)
        self.bar.update(progress.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_report(report: SyncReport, as_json: bool) -> None:
    if as_json:
        emit(report.to_json())
        return
    typer.echo(report.summary(timing=True))
    for item in report.skipped:
        typer.echo(f"  skipped {item.source}: {item.reason}", err=True)
    for item in report.parts_skipped:
        typer.echo(f"  left out {item.source}: {item.reason}", err=True)


def _parse_meta(pairs: list[str] | None) -> dict[str, str | int | float | bool]:
    meta: dict[str, str | int | float | bool] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            msg = f"expected KEY=VALUE, got {pair!r}"
            raise typer.BadParameter(msg, param_hint="--meta")
        meta[key] = value
    return meta


@cli.command()
def index(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="The folder to index (recursively).")],
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    model: ModelOpt = None,
    pretrained: PretrainedOpt = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Empty the knowledge base first (needed to switch models).")
    ] = False,
    meta: Annotated[list[str] | None, typer.Option("--meta", help="KEY=VALUE stored on every document.")] = None,
    allow_removal: Annotated[
        bool,
        typer.Option("--allow-removal", help="Go ahead even if the sync would remove most of what the folder had."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Index / , a system folder or your home folder itself.")
    ] = False,
    ocr: Annotated[
        bool | None,
        typer.Option(
            "--ocr/--no-ocr",
            help="Read the text inside images and scanned PDF pages (default: where the engine is installed; "
            "env MMRAG_OCR).",
        ),
    ] = None,
    ocr_engine: Annotated[
        str | None, typer.Option("--ocr-engine", help="rapidocr (default) or tesseract (env MMRAG_OCR_ENGINE).")
    ] = None,
    ocr_languages: Annotated[
        str | None,
        typer.Option("--ocr-languages", help="Tesseract languages, e.g. eng+chi_sim (env MMRAG_OCR_LANGUAGES)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make the knowledge base match FOLDER: add new files, re-embed changed ones, drop deleted ones."""
    from mmrag.factory import open_knowledge_base

    settings = settings_from(
        ctx,
        db=db,
        chroma_url=chroma_url,
        model=model,
        pretrained=pretrained,
        ocr=None if ocr is None else ("on" if ocr else "off"),
        ocr_engine=ocr_engine,
        ocr_languages=ocr_languages,
    )
    kb = open_knowledge_base(settings, rebuild=rebuild, thorough=True)
    bar = _ProgressBar(enabled=not as_json)
    try:
        report = kb.sync(folder, metadata=_parse_meta(meta), on_progress=bar, allow_removal=allow_removal, force=force)
    finally:
        bar.close()
    if report.added or report.updated:
        kb.searcher.scorer.prior  # noqa: B018  (measure the model's score scale now, while it is loaded: searches then need no torch)
    _print_report(report, as_json)


@cli.command()
def status(
    ctx: typer.Context,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Show where the knowledge base is, its model, and what it holds."""
    from mmrag.factory import open_knowledge_base
    from mmrag.kb.inventory import picture_counts

    kb = open_knowledge_base(settings_from(ctx, db=db, chroma_url=chroma_url), create=False, thorough=True)
    record = kb.model_record
    counts = kb.counts()
    pictures = picture_counts(kb.store)
    data = {
        "location": kb.location,
        "name": kb.name,
        "model": record.label if record else None,
        "dim": record.dim if record else None,
        "images": counts.images,
        "text_chunks": counts.text_chunks,
        "text_documents": counts.text_sources,
        "pdf_figures": pictures.figures,
        "pdf_pages": pictures.pages,
        "ocr_images": pictures.ocr_images,
    }
    if as_json:
        emit(data)
    else:
        for key, value in data.items():
            typer.echo(f"{key:15} {value if value is not None else '(empty)'}")


@cli.command()
def remove(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files, or folders whose files to remove.")] = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="A document id (repeatable).")] = None,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove documents from the knowledge base, by file/folder path or by id (files on disk are untouched).

    A PATH or id that is not in the knowledge base is named, and the exit code is 1 (the others are removed).
    """
    from mmrag.factory import open_knowledge_base

    if not paths and not ids:
        msg = "name at least one PATH or --id"
        raise typer.BadParameter(msg)
    kb = open_knowledge_base(settings_from(ctx, db=db, chroma_url=chroma_url), create=False)
    removed, missing = kb.remove_each(paths or [], ids or [])  # one journalled removal: all of it or none
    noun = "document" if removed == 1 else "documents"
    if missing:
        message = f"not in the knowledge base at {kb.location}: {', '.join(missing)}"
        if OUTPUT.json:
            emit_error(message, "NotInKnowledgeBase", removed=removed, not_found=missing)
        else:
            typer.echo(f"removed {removed} {noun}")
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(1)
    if as_json:
        emit({"removed": removed})
    else:
        typer.echo(f"removed {removed} {noun}")


@cli.command()
def demo(
    ctx: typer.Context,
    folder: Annotated[
        Path | None, typer.Option(help="Where to draw the demo files (default: MMRAG_HOME/demo/files).")
    ] = None,
    db: DbOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Build the offline demo: draw the toy model's shapes and notes, and index them with --model toy."""
    from mmrag.factory import demo_settings, open_knowledge_base
    from mmrag.toy.demo import write_demo_folder

    settings = demo_settings(settings_from(ctx, db=db))
    target = folder or settings.home / "demo" / "files"
    write_demo_folder(target)
    kb = open_knowledge_base(settings)
    report = kb.sync(target)
    _print_report(report, as_json)
    runtime = _prepare_query_texts(kb.clip, settings.text_runtime)
    if not as_json:
        typer.echo(f"demo knowledge base: {kb.location} (model toy), files in {target}")
        if runtime:
            typer.echo(f"query texts: {runtime}")


def _prepare_query_texts(clip: Any, mode: str) -> str | None:
    """Export the model's text tower for ONNX Runtime (once; later commands find it cached and skip torch).

    Returns the runtime's status, or None when it stays on torch (``MMRAG_TEXT_RUNTIME=torch``, a GPU, or a
    failure, which is a warning: the demo works without it).
    """
    from mmrag.errors import TextRuntimeError

    if mode == "torch":
        return None
    try:
        return str(clip.prepare_text_runtime())
    except TextRuntimeError as e:
        typer.echo(f"note: query texts stay on torch: {e}", err=True)
        return None
