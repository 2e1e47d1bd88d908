"""A Chroma server that accepts connections but never answers gets a clear error within its deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from mmrag import open_knowledge_base
from mmrag.errors import StoreError


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def test_a_black_hole_server_times_out_with_a_clear_error(black_hole: str) -> None:
    start = time.monotonic()
    with pytest.raises(StoreError, match=r"did not answer within 1 s.*MMRAG_CHROMA_TIMEOUT"):
        open_knowledge_base(chroma_url=black_hole, chroma_timeout=1.0, model="toy")
    assert time.monotonic() - start < 5


def test_the_cli_reports_a_black_hole_server_and_exits_1(black_hole: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmrag.cli import main

    monkeypatch.setenv("MMRAG_CHROMA_TIMEOUT", "1")
    monkeypatch.setattr("sys.argv", ["mmrag", "status", "--chroma-url", black_hole])
    start = time.monotonic()
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    assert time.monotonic() - start < 5


def test_a_closed_port_fails_fast() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach the Chroma server"):
        open_knowledge_base(chroma_url=f"http://127.0.0.1:{port}", model="toy")
    assert time.monotonic() - start < 5


def test_the_timeout_setting_is_validated() -> None:
    from mmrag.config import Settings
    from mmrag.errors import ConfigError

    with pytest.raises(ConfigError, match="MMRAG_CHROMA_TIMEOUT"):
        Settings(chroma_timeout=0)
    assert Settings.from_env({"MMRAG_CHROMA_TIMEOUT": "2.5"}).chroma_timeout == 2.5
