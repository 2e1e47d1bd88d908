"""The documentation's examples: its fenced blocks, a runner for its Python examples in one process, and the
README followed as a newcomer would (a background job, see ``tests/support/background.py``)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.background import Job
from tests.support.cli import CliResult, isolated_environ, run_entry_point
from tests.support.repo import GUIDES, README

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


def run_python_examples(
    examples: list[str], cwd: Path, home: Path, timeout: float = 600, base: Mapping[str, str] | None = None
) -> list[ExampleRun]:
    """Run every example, in order, in one fresh ``python`` in ``cwd`` (the isolated mmrag environment)."""
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=json.dumps(examples),
        cwd=cwd,
        env=isolated_environ(home, base=base),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        msg = f"the examples' runner failed:\n{proc.stderr}"
        raise RuntimeError(msg)
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return [ExampleRun(example, **result) for example, result in zip(examples, results, strict=True)]


# --- the README, as a newcomer follows it -------------------------------------------------------------------


def readme_commands() -> list[list[str]]:
    """The README's offline commands (``mmrag demo …``, then ``mmrag search …``), as argument lists."""
    offline = next(b for b in blocks("bash", README) if b.startswith("mmrag demo"))
    return [shlex.split(line) for line in offline.strip().splitlines()]


def python_examples() -> list[str]:
    """Every ```python block of README.md then docs/*.md, in order."""
    return blocks("python", README) + [b for guide in GUIDES for b in blocks("python", guide)]


@dataclass(frozen=True)
class ReadmeRun:
    folder: Path  # where it all ran
    commands: list[CliResult]  # the offline commands, in order
    examples: list[ExampleRun]  # the Python examples, in order


def run_readme(folder: Path, environ: Mapping[str, str]) -> ReadmeRun:
    """In ``folder``: the offline commands, in order, as real processes (``python -m mmrag``), then every
    Python example (stopping at a command that fails).

    Query texts stay on torch (the isolated environment): an example that ran long enough would otherwise
    start an ONNX export that outlives it.
    """
    home = folder / "home"
    results = []
    for args in readme_commands():
        if args[0] != "mmrag":
            msg = f"the README's offline block should hold mmrag commands, not {args}"
            raise RuntimeError(msg)
        results.append(run_entry_point(*args[1:], home=home, cwd=folder, check=False, base=environ))
        if results[-1].exit_code != 0:
            return ReadmeRun(folder, results, [])
    return ReadmeRun(folder, results, run_python_examples(python_examples(), cwd=folder, home=home, base=environ))


README_RUN = Job("readme_run", run_readme)
