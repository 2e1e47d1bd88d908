"""``mmrag ui``: start the Streamlit chat (``mmrag/ui/page.py``) with the options as ``MMRAG_*`` variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

import mmrag
from mmrag.cli.common import ChromaUrlOpt, DbOpt, ModelOpt, cli, settings_from
from mmrag.config import Settings
from mmrag.errors import ConfigError


def ui_script() -> Path:
    """The Streamlit page shipped inside the package (``mmrag/ui/page.py``), found without importing Streamlit.

    Raises:
        ConfigError: it is missing (a broken install).
    """
    script = Path(mmrag.__file__).resolve().parent / "ui" / "page.py"
    if not script.is_file():
        msg = f"mmrag's Streamlit page is missing from the install ({script}); reinstall mmrag"
        raise ConfigError(msg)
    return script


def _index_first(settings: Settings, folder: Path) -> None:
    """Sync ``folder`` before the UI starts; without the model's weights, say that the UI will fall back."""
    from mmrag.errors import ModelUnavailableError
    from mmrag.factory import open_knowledge_base

    try:
        report = open_knowledge_base(settings).sync(folder)
    except ModelUnavailableError as e:
        typer.echo(f"note: not indexing {folder}: {e}", err=True)
        typer.echo("note: the UI falls back to the offline toy model and its demo knowledge base", err=True)
        return
    typer.echo(f"indexed {folder}: {report.summary()}")


@cli.command()
def ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    model: ModelOpt = None,
    llm: Annotated[
        str | None, typer.Option("--llm", help="Chat model as provider:model, or none. Env MMRAG_LLM.")
    ] = None,
    headless: Annotated[bool, typer.Option(help="Don't open a browser.")] = False,
    index: Annotated[
        Path | None, typer.Option("--index", help="Sync this folder into the knowledge base first.")
    ] = None,
) -> None:
    """Open the chat UI in the browser (Streamlit): ask, see images, upload, classify, index, browse."""
    settings = settings_from(ctx, db=db, chroma_url=chroma_url, model=model, llm=llm)
    script = ui_script()
    if index is not None:
        _index_first(settings, index)
    env = dict(os.environ)
    for var, value in {
        "MMRAG_HOME": settings.home,
        "MMRAG_DB": settings.db,
        "MMRAG_CHROMA_URL": settings.chroma_url,
        "MMRAG_MODEL": settings.model,
        "MMRAG_PRETRAINED": settings.pretrained,
        "MMRAG_DEVICE": settings.device,
        "MMRAG_BATCH_SIZE": settings.batch_size,
        "MMRAG_MAX_MEGAPIXELS": settings.max_megapixels,
        "MMRAG_LLM": settings.llm,
        "MMRAG_MAX_UPLOAD_MB": settings.max_upload_mb,
    }.items():
        if value is not None:
            env[var] = str(value)
        else:
            env.pop(var, None)
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", str(headless).lower(),
        "--server.maxUploadSize", str(max(1, int(settings.max_upload_mb + 0.999))),
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    typer.echo(f"mmrag UI on http://{host}:{port} (Ctrl+C to stop)")
    try:
        code = subprocess.call(command, env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
