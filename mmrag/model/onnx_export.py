"""Exporting CLIP's text tower to ONNX, in a child process: ``python -m mmrag.model.onnx_export JOB OUT PARENT``.

The export is long, Python-heavy work that would hold the GIL against the queries being served, and a process
that exits meanwhile must not be held up or crash (C++ work in a daemon thread at interpreter exit aborts the
process). So :func:`run_job` starts this module as a child process: it runs at low priority on one thread,
finishes the cache file even if its parent has gone, leaves a failure's reason in ``error.txt`` beside the job,
and, if the parent has gone meanwhile, removes the job's folder itself. Its exit status is 0 on success, 1 on
failure. :mod:`mmrag.model.onnx_text` decides when to export and checks the result.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mmrag.errors import TextRuntimeError

if TYPE_CHECKING:
    import torch

    from mmrag.model.text_tower import TextTower

INSTALL_HINT = "install them with `pip install onnxruntime onnx onnxscript`, or set MMRAG_TEXT_RUNTIME=torch"


def export(tower: TextTower, example: torch.Tensor, path: Path, *, context_length: int) -> None:
    """Export ``tower`` to ``path`` with dynamic batch and sequence sizes; written atomically.

    Args:
        example: trimmed tokens with at least 2 rows and 2 positions (size-1 dimensions get fixed).

    Raises:
        TextRuntimeError: the exporter is missing or fails on this model.
    """
    import torch

    check_exporter()
    batch = torch.export.Dim("batch", min=1, max=4096)
    positions = torch.export.Dim("positions", min=2, max=context_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                tower.eval(),
                (example,),
                dynamo=True,
                dynamic_shapes={"tokens": {0: batch, 1: positions}},
                input_names=["tokens"],
                output_names=["features"],
                verbose=False,
                optimize=True,
            )
        if program is None:
            msg = "torch.onnx.export returned no program"
            raise TextRuntimeError(msg)
        program.save(str(partial))
        partial.replace(path)
    except TextRuntimeError:
        raise
    except Exception as e:
        msg = f"could not export the text tower to ONNX ({type(e).__name__}: {e}); set MMRAG_TEXT_RUNTIME=torch"
        raise TextRuntimeError(msg) from e
    finally:
        partial.unlink(missing_ok=True)


def check_exporter() -> None:
    """Raise if the exporter's packages (onnx, onnxscript) are missing."""
    for name in ("onnx", "onnxscript"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            msg = f"exporting the text tower to ONNX needs the onnx and onnxscript packages: {INSTALL_HINT}"
            raise TextRuntimeError(msg)


def write_job(tower: TextTower, example: torch.Tensor, *, context_length: int) -> Path:
    """Save what the exporting child needs in a private temporary folder; returns the job file."""
    import torch

    folder = Path(tempfile.mkdtemp(prefix="mmrag-onnx-export-"))
    job = folder / "job.pt"
    torch.save({"tower": tower, "example": example, "context_length": context_length}, job)
    return job


def export_job(job: Path, path: Path) -> None:
    """Do a job that :func:`write_job` wrote (in the child): load it, remove it, export to ``path``.

    The job file is loaded as a full pickle: it is this library's own output, in a private folder.

    Raises:
        TextRuntimeError: the export fails.
    """
    import torch
    from filelock import FileLock

    spec = torch.load(job, weights_only=False)
    job.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # another process may be exporting the same weights
        if not path.is_file():
            export(spec["tower"], spec["example"], path, context_length=spec["context_length"])


def run_job(job: Path, path: Path, *, timeout: float = 1800) -> None:
    """Export in a child process and wait for it (a plain wait: safe while the interpreter exits).

    Raises:
        TextRuntimeError: the child failed (with the reason it left in error.txt) or timed out.
    """
    # No pipes: the child must be able to finish (and write the cache) after this process has gone.
    command = [sys.executable, "-m", __name__, str(job), str(path), str(os.getpid())]
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=timeout, start_new_session=True, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        msg = f"exporting the text tower took over {timeout:.0f} s; set MMRAG_TEXT_RUNTIME=torch"
        raise TextRuntimeError(msg) from e
    if done.returncode != 0 or not path.is_file():
        error = job.with_name("error.txt")
        reason = error.read_text().strip() if error.is_file() else f"the exporter exited with {done.returncode}"
        msg = f"exporting the text tower failed: {reason}"
        raise TextRuntimeError(msg)


def main(argv: list[str]) -> int:
    """The child's work: export the job to its output path. Returns the exit status."""
    import torch

    job_arg, out_arg, parent = argv
    job = Path(job_arg)
    with contextlib.suppress(OSError):
        os.nice(10)  # be the least urgent work on the machine
    torch.set_num_threads(1)
    try:
        export_job(job, Path(out_arg))
    except Exception as e:
        job.with_name("error.txt").write_text(str(e) if isinstance(e, TextRuntimeError) else repr(e))
        return 1
    finally:
        if str(os.getppid()) != parent:
            shutil.rmtree(job.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
