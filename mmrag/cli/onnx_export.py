"""The child process that exports a text tower to ONNX: ``python -m mmrag.cli.onnx_export JOB OUT PARENT_PID``.

Started by :func:`mmrag.onnx_text.run_job`, never by hand. It runs at low priority on one thread, leaves a
failure's reason in ``error.txt`` beside the job for its parent, and, if the parent has gone meanwhile,
removes the job's folder itself. Its exit status is 0 on success, 1 on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

from mmrag.errors import TextRuntimeError


def main(argv: list[str]) -> int:
    import torch

    from mmrag.onnx_text import export_job

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
    sys.exit(main(sys.argv[1:]))
