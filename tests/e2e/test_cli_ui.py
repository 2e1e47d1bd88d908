"""`mmrag ui`: index first (or say that the UI will fall back to the toy demo), the Streamlit command, and the
real process: a parent that stays light and stops its Streamlit child on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmrag.cli.ui import _index_first, index_main, streamlit_command
from mmrag.config import Settings
from mmrag.factory import open_knowledge_base
from tests.support.cli import isolated_environ
from tests.support.files import make_folder
from tests.support.net import free_port, wait_for_port


def test_index_first_syncs_the_folder(tmp_path: Path, tiny_model_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", db=tmp_path / "db", model=tiny_model_id)
    _index_first(settings, make_folder(tmp_path / "files"))
    assert "added 5" in capsys.readouterr().out
    assert open_knowledge_base(settings).counts().images == 3


def test_index_first_without_weights_announces_the_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mmrag.model.weights.host_reachable", lambda *a, **k: False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    settings = Settings.from_env({}, home=tmp_path / "home", db=tmp_path / "db")  # the default ViT-B-32
    _index_first(settings, make_folder(tmp_path / "files"))
    captured = capsys.readouterr()
    assert "with the offline toy model instead" in captured.err
    assert "added 5" in captured.out
    offline = Settings.from_env({}, home=tmp_path / "home", db=tmp_path / "home" / "offline" / "kb", model="toy")
    assert open_knowledge_base(offline).counts().images == 3  # indexed with the toy, where the UI will find it


def test_index_main_reports_an_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert index_main(str(tmp_path / "no such folder")) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_the_streamlit_command_hides_the_deploy_button(tmp_path: Path) -> None:
    command = streamlit_command(tmp_path / "page.py", port=8600, host="127.0.0.1", headless=True, max_upload_mb=20)
    assert command[command.index("--client.toolbarMode") + 1] == "minimal"
    assert command[command.index("--server.port") + 1] == "8600"


# --- the real process: memory and stopping ---------------------------------------------------------------

MODEL_STACK_LIBRARIES = ("libtorch", "/torch/", "chromadb", "onnxruntime", "open_clip")


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc (Linux)")
def test_sigterm_stops_the_streamlit_child_and_the_parent_stays_light(tmp_path: Path, ui_demo_db: Path) -> None:
    """`mmrag ui` as a real process: its parent maps none of the model stack, and `kill -TERM` on the parent's
    pid stops the Streamlit child serving the port."""
    port = free_port()
    env = isolated_environ(tmp_path / "home", {"MMRAG_DB": str(ui_demo_db), "MMRAG_MODEL": "toy"})
    log = (tmp_path / "ui.log").open("wb")
    parent = subprocess.Popen(
        [sys.executable, "-m", "mmrag", "ui", "--port", str(port), "--headless"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    kids: list[int] = []
    try:
        wait_for_port(port, parent, what="mmrag ui")
        kids = children(parent.pid)
        assert len(kids) == 1, kids
        maps = Path(f"/proc/{parent.pid}/maps").read_text()
        loaded = sorted({lib for lib in MODEL_STACK_LIBRARIES if lib in maps})
        assert not loaded, f"the mmrag ui parent loaded {loaded}"
        status = Path(f"/proc/{parent.pid}/status").read_text()
        peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
        print(f"mmrag ui parent: peak RSS {peak_kb / 1024:.0f} MB")
        assert peak_kb < 200 * 1024, f"the mmrag ui parent peaked at {peak_kb / 1024:.0f} MB"

        os.kill(parent.pid, signal.SIGTERM)
        assert parent.wait(timeout=30) in (0, 128 + signal.SIGTERM)  # Streamlit exits 0, or dies of the signal
        assert wait_gone(kids[0], 15), "the Streamlit child outlived `kill -TERM` on mmrag ui"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "something still serves the UI's port"
    finally:
        for pid in [*kids, parent.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.wait()
        log.close()


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    """supervise() in a real process: SIGTERM is forwarded, and a child that ignores it is killed (137)."""
    ready = tmp_path / "ready"
    child = (
        "import signal, sys, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).write_text('x'); time.sleep(60)"
    )
    supervisor = (
        "import sys; from mmrag.cli.ui import supervise; "
        f"raise SystemExit(supervise([sys.executable, '-c', {child!r}], {{}}, grace=1.0))"
    )
    proc = subprocess.Popen([sys.executable, "-c", supervisor], env=isolated_environ(tmp_path / "home"))
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline, "the child did not start"
            assert proc.poll() is None, proc.returncode
            time.sleep(0.1)
        [kid] = children(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 128 + signal.SIGKILL
        assert wait_gone(kid, 5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
