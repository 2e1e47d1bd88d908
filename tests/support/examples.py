"""The documentation's examples: its fenced blocks, and a runner for its Python examples in one process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.cli import isolated_environ

# Runs each example (a JSON list on stdin) like `python -c EXAMPLE` would, but in one interpreter: each in
# fresh globals as __main__, its stdout and stderr captured, an exception reported with its traceback.
_RUNNER = r"""
import contextlib, io, json, sys, traceback
results = []
for i, example in enumerate(json.load(sys.stdin)):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            exec(compile(example, f"<example {i + 1}>", "exec"), {"__name__": "__main__"})
            ok = True
        except SystemExit as e:
            ok = e.code in (None, 0)
        except BaseException:
            ok = False
            traceback.print_exc()
    results.append({"ok": ok, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


@dataclass(frozen=True)
class ExampleRun:
    example: str
    ok: bool
    stdout: str
    stderr: str


def blocks(lang: str, path: Path) -> list[str]:
    """The ```LANG fenced blocks of a Markdown file."""
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def run_python_examples(examples: list[str], cwd: Path, home: Path, timeout: float = 600) -> list[ExampleRun]:
    """Run every example, in order, in one fresh ``python`` in ``cwd`` (the isolated mmrag environment)."""
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps(examples),
        cwd=cwd,
        env=isolated_environ(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return [ExampleRun(example, **result) for example, result in zip(examples, results, strict=True)]
