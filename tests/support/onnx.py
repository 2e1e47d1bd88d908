"""Real processes around the ONNX text runtime: exports made by the library, and processes that exit while
they prepare one. Both run as background jobs (``tests/support/background.py``)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.background import Job
from tests.support.cli import isolated_environ

# Query texts for comparing runtimes: mixed lengths, scripts, an empty one, one longer than the context.
QUERY_TEXTS = ["a red circle", "一个红色的圆形", "日落海边", "", "x", "a big blue square on the left " * 20]

_PREPARE = (
    "import sys\n"
    "from pathlib import Path\n"
    "from mmrag.model.clip import ClipModel\n"
    "clip = ClipModel(sys.argv[1], device='cpu', text_runtime='onnx', runtime_dir=Path(sys.argv[2]))\n"
    "print(clip.prepare_text_runtime())\n"
)


def export_text_tower(folder: Path, environ: Mapping[str, str], model: str) -> Path:
    """Export ``model``'s text tower into ``folder`` with ``ClipModel.prepare_text_runtime`` (in a process of
    its own, which runs the library's export child) and return the export's path."""
    done = subprocess.run(
        [sys.executable, "-c", _PREPARE, model, str(folder)],
        env=isolated_environ(folder / "home", base=environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        msg = f"the ONNX export of {model} failed:\n{done.stderr}"
        raise RuntimeError(msg)
    status = done.stdout.strip().splitlines()[-1]  # onnxruntime (text-….onnx)
    return folder / status.removeprefix("onnxruntime (").removesuffix(")")


def _export_toy(folder: Path, environ: Mapping[str, str]) -> Path:
    return export_text_tower(folder, environ, "toy")


def _export_tiny(folder: Path, environ: Mapping[str, str], tiny_model_id: str) -> Path:
    return export_text_tower(folder, environ, tiny_model_id)


# Both into one folder, the session's ONNX cache (onnx_dir).
TOY_EXPORT = Job("toy_onnx_export", _export_toy, folder="onnx")
TINY_EXPORT = Job("tiny_onnx_export", _export_tiny, needs=("tiny_model_id",), folder="onnx")


# --- processes that exit while preparing ---------------------------------------------------------------------

_EXIT_SCRIPT = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from mmrag.model.clip import ClipModel\n"
    "clip = ClipModel('toy', device='cpu', text_runtime='auto', runtime_dir=Path(sys.argv[2]))\n"
    "clip.encode_query_texts(['a red circle'])\n"
    "print(clip.text_runtime_status)\n"
    "while sys.argv[1] == 'wait' and 'child process' not in clip.text_runtime_status:\n"
    "    time.sleep(0.05)\n"
)


@dataclass(frozen=True)
class Exited:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class ExitRuns:
    now: list[Exited]  # exited at once, while hashing the weights or writing the export's job
    waited: Exited  # exited while its (detached) child exported
    folder: Path  # the waiting one's cache folder
    exports: list[Path]  # what its child left there, up to two minutes after


def run_exits_while_preparing(folder: Path, environ: Mapping[str, str]) -> ExitRuns:
    """Processes that start preparing the toy's ONNX runtime (``text_runtime=auto``), one after the other, each
    with a cache folder of its own (so that what one leaves can't change what the next sees): three exit at
    once, one once its export child runs. Then wait (two minutes at most) for that child to finish the
    export after its parent has gone."""
    env = isolated_environ(folder / "home", base=environ)

    def run(mode: str, runtime_dir: Path) -> Exited:
        command = [sys.executable, "-c", _EXIT_SCRIPT, mode, str(runtime_dir)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        return Exited(done.returncode, done.stdout, done.stderr)

    now = [run("now", folder / f"now-{i}") for i in range(3)]
    exported = folder / "wait"
    waited = run("wait", exported)
    deadline = time.monotonic() + 120
    while waited.returncode == 0 and not list(exported.glob("text-*.onnx")) and time.monotonic() < deadline:
        time.sleep(0.5)
    return ExitRuns(now, waited, exported, sorted(exported.glob("text-*.onnx")))


EXITS_WHILE_PREPARING = Job("exits_while_preparing", run_exits_while_preparing)
