"""``mmrag ui``: start the Streamlit chat (``mmrag/ui/page.py``) with the options as ``MMRAG_*`` variables.

The command is a light supervisor: it imports none of the model stack (torch, open_clip, chromadb), runs
Streamlit as a child process, forwards SIGTERM, SIGINT and SIGHUP to it, and stops it (SIGKILL after
:data:`STOP_GRACE_S`) before exiting itself; on Linux the child also gets SIGTERM if the parent dies. ``--index``
runs in a child process of its own, so the model it loads is gone before the UI starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
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


STOP_GRACE_S = 10.0
"""Seconds the Streamlit child gets to stop after a forwarded signal, before it is killed."""
FORWARDED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))
"""The signals passed on to the child (SIGHUP where the platform has it)."""
_INDEX_SCRIPT = "import sys; from mmrag.cli.ui import index_main; raise SystemExit(index_main(sys.argv[1]))"


def _index_first(settings: Settings, folder: Path) -> None:
    """Sync ``folder`` before the UI starts; without the model's weights, into the offline toy store instead."""
    from mmrag.errors import ModelUnavailableError
    from mmrag.factory import offline_settings, open_knowledge_base

    try:
        report = open_knowledge_base(settings).sync(folder)
    except ModelUnavailableError as e:
        offline = offline_settings(settings)
        typer.echo(f"note: {e}", err=True)
        typer.echo(f"note: indexing {folder} with the offline toy model instead, into {offline.db}", err=True)
        report = open_knowledge_base(offline).sync(folder)
    typer.echo(f"indexed {folder}: {report.summary()}")


def index_main(folder: str) -> int:
    """``--index`` in its own process (settings from ``MMRAG_*``): 0, or 1 after printing the error."""
    from mmrag.errors import MmragError

    try:
        _index_first(Settings.from_env(), Path(folder))
    except MmragError as e:
        typer.echo(f"error: {e}", err=True)
        return 1
    except KeyboardInterrupt:  # Ctrl+C, forwarded by the supervisor
        typer.echo("interrupted: not all of the folder was indexed", err=True)
        return 1
    return 0


def child_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the UI's child processes: ``environ`` with the settings as ``MMRAG_*`` variables."""
    env = dict(os.environ if environ is None else environ)
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
    return env


def streamlit_command(script: Path, *, port: int, host: str, headless: bool, max_upload_mb: float) -> list[str]:
    """The Streamlit command line: the page, where to serve, and the toolbar without the Deploy button."""
    return [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", str(headless).lower(),
        "--server.maxUploadSize", str(max(1, int(max_upload_mb + 0.999))),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip


class _Forwarded(Exception):
    """Raised by the signal handler to wake :func:`supervise` from its wait."""


def _die_with_parent() -> None:  # pragma: no cover (runs in the child, between fork and exec)
    """Linux: have the kernel send the child SIGTERM if this process dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def supervise(command: list[str], env: Mapping[str, str], *, grace: float = STOP_GRACE_S) -> int:
    """Run ``command`` until it exits, forwarding SIGTERM, SIGINT and SIGHUP to it; its exit code.

    The child runs in its own process group, so a terminal's Ctrl+C reaches it once (through us). After a
    forwarded signal the child has ``grace`` seconds to stop before it is killed. A child killed by signal N
    gives 128 + N, as a shell reports it.
    """
    child = subprocess.Popen(
        command,
        env=dict(env),
        process_group=0 if os.name == "posix" else None,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    waiting = [False]  # the handler interrupts only the blocking wait below

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)
        if waiting[0]:
            raise _Forwarded

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    deadline: float | None = None
    try:
        while True:
            try:
                waiting[0] = True
                code = child.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
                break
            except _Forwarded:  # the child has the signal; give it the grace to stop (from the first one)
                deadline = deadline or time.monotonic() + grace
            except subprocess.TimeoutExpired:
                child.kill()
                deadline = time.monotonic() + grace
            finally:
                waiting[0] = False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # an unexpected error in the loop: never leave the server behind
            child.kill()
            child.wait()
    return 128 - code if code < 0 else code


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
    env = child_environment(settings)
    if index is not None:
        done = supervise([sys.executable, "-c", _INDEX_SCRIPT, str(index)], env)
        if done != 0:
            raise typer.Exit(done)
    command = streamlit_command(script, port=port, host=host, headless=headless, max_upload_mb=settings.max_upload_mb)
    typer.echo(f"mmrag UI on http://{host}:{port} (Ctrl+C to stop)")
    raise typer.Exit(supervise(command, env))
