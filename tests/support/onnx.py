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
    "for model in sys.argv[2:]:\n"
    "    clip = ClipModel(model, device='cpu', text_runtime='onnx', runtime_dir=Path(sys.argv[1]))\n"
    "    print(clip.prepare_text_runtime(), flush=True)\n"
)


def export_text_towers(folder: Path, environ: Mapping[str, str], tiny_model_id: str) -> dict[str, Path]:
    """Export the text towers of the toy and of the tiny model into ``folder`` with
    ``ClipModel.prepare_text_runtime`` (in a process of its own, which runs the library's export child for
    each), and return ``{"toy": path, "tiny": path}``."""
    done = subprocess.run(
        [sys.executable, "-c", _PREPARE, str(folder), "toy", tiny_model_id],
        env=isolated_environ(folder / "home", base=environ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        msg = f"the ONNX exports failed:\n{done.stderr}"
        raise RuntimeError(msg)
    statuses = done.stdout.strip().splitlines()[-2:]  # onnxruntime (text-….onnx), one a model
    names = [status.removeprefix("onnxruntime (").removesuffix(")") for status in statuses]
    return {"toy": folder / names[0], "tiny": folder / names[1]}


ONNX_EXPORTS = Job("onnx_exports", export_text_towers, needs=("tiny_model_id",))


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
    """Four processes start preparing the toy's ONNX runtime (``text_runtime=auto``), side by side, each with
    its own cache folder: three exit at once, one once its export child runs. Then wait (two minutes at
    most) for that child to finish the export after its parent has gone."""
    env = isolated_environ(folder / "home", base=environ)

    def start(mode: str, runtime_dir: Path) -> subprocess.Popen[str]:
        command = [sys.executable, "-c", _EXIT_SCRIPT, mode, str(runtime_dir)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def finish(proc: subprocess.Popen[str]) -> Exited:
        out, err = proc.communicate(timeout=120)
        return Exited(proc.returncode, out, err)

    exported = folder / "wait"
    now = [start("now", folder / f"now-{i}") for i in range(3)]
    waiting = start("wait", exported)
    runs = [finish(proc) for proc in now]
    waited = finish(waiting)
    deadline = time.monotonic() + 120
    while waited.returncode == 0 and not list(exported.glob("text-*.onnx")) and time.monotonic() < deadline:
        time.sleep(0.5)
    return ExitRuns(runs, waited, exported, sorted(exported.glob("text-*.onnx")))


EXITS_WHILE_PREPARING = Job("exits_while_preparing", run_exits_while_preparing)
