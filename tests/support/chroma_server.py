"""Start and stop a real `chroma run` server on 127.0.0.1 for tests (or use the one CI started)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.net import free_port

ENV_URL = "MMRAG_TEST_CHROMA_URL"


def _chroma_binary() -> str:
    beside_python = Path(sys.executable).parent / "chroma"
    found = str(beside_python) if beside_python.exists() else shutil.which("chroma")
    if not found:
        msg = "the `chroma` command (from the chromadb package) is not installed"
        raise RuntimeError(msg)
    return found


@contextmanager
def chroma_server(path: Path) -> Iterator[str]:
    """Yield the URL of a Chroma server: CI's (``MMRAG_TEST_CHROMA_URL``) or one started here and stopped after."""
    if os.environ.get(ENV_URL):
        yield os.environ[ENV_URL]
        return
    port = free_port()
    log = (path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [_chroma_binary(), "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    msg = f"chroma run did not start: see {path / 'chroma.log'}"
                    raise RuntimeError(msg) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
