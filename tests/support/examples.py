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


# Runs ``mmrag`` commands (a JSON list of [args, stdin] on stdin) one after the other in one interpreter, through
# the console script's function, each with its own stdin, stdout and stderr.
_CLI_RUNNER = r"""
import contextlib, io, json, sys
from mmrag.cli import main
results = []
for args, stdin in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    sys.argv, sys.stdin = ["mmrag", *args], io.StringIO(stdin)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    results.append({"args": args, "exit_code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Command:
    """One README command line: mmrag's arguments, and what ``echo TEXT |`` pipes into it."""

    line: str
    args: list[str]
    stdin: str = ""


def parse_command(line: str) -> Command | None:
    """``mmrag ARGS  # comment`` or ``echo TEXT | mmrag ARGS``, as a :class:`Command`; None for other lines."""
    words = shlex.split(line, comments=True)
    stdin = ""
    if words[:1] == ["echo"] and "|" in words:
        bar = words.index("|")
        stdin, words = " ".join(words[1:bar]) + "\n", words[bar + 1 :]
    if words[:1] != ["mmrag"]:
        return None
    return Command(line, words[1:], stdin)


def readme_commands(lang: str = "bash") -> list[Command]:
    """Every mmrag command of the README's ```LANG blocks, in order: with ``bash``, the offline ones (the demo
    first); with ``sh``, those that need real weights or a chat model. ``mmrag ui`` (a server) is left out."""
    found = [parse_command(line) for block in blocks(lang, README) for line in block.strip().splitlines()]
    return [c for c in found if c is not None and c.args[:1] != ["ui"]]


def python_examples() -> list[str]:
    """Every ```python block of README.md then docs/*.md, in order."""
    return blocks("python", README) + [b for guide in GUIDES for b in blocks("python", guide)]


@dataclass(frozen=True)
class ReadmeRun:
    folder: Path  # where it all ran
    commands: list[CliResult]  # the offline commands, in order
    examples: list[ExampleRun]  # the Python examples, in order


FIRST_STEPS = 2
"""The README's first offline commands (``mmrag demo``, then a search), run as real processes as a newcomer
types them; the others run in one interpreter (:data:`_CLI_RUNNER`), which saves a torch import each."""


def run_commands(
    commands: list[Command], cwd: Path, home: Path, base: Mapping[str, str] | None = None
) -> list[CliResult]:
    """Run ``commands`` in order in one fresh ``python`` in ``cwd`` (the isolated mmrag environment)."""
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_RUNNER],
        input=json.dumps([[c.args, c.stdin] for c in commands]),
        cwd=cwd,
        env=isolated_environ(home, base=base),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        msg = f"the commands' runner failed:\n{proc.stderr}"
        raise RuntimeError(msg)
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return [CliResult(tuple(r["args"]), r["exit_code"], r["stdout"], r["stderr"]) for r in results]


def run_readme(folder: Path, environ: Mapping[str, str]) -> ReadmeRun:
    """In ``folder``: the README's offline commands in order (the first steps as real processes, ``python -m
    mmrag``, stopping at one that fails), then every Python example.

    Query texts stay on torch (the isolated environment): an example that ran long enough would otherwise
    start an ONNX export that outlives it.
    """
    home = folder / "home"
    commands = readme_commands()
    if commands[0].args[:1] != ["demo"]:
        msg = f"the README's first offline command should be mmrag demo, not {commands[0].line}"
        raise RuntimeError(msg)
    results = []
    for command in commands[:FIRST_STEPS]:
        results.append(
            run_entry_point(*command.args, home=home, cwd=folder, input=command.stdin, check=False, base=environ)
        )
        if results[-1].exit_code != 0:
            return ReadmeRun(folder, results, [])
    results += run_commands(commands[FIRST_STEPS:], cwd=folder, home=home, base=environ)
    return ReadmeRun(folder, results, run_python_examples(python_examples(), cwd=folder, home=home, base=environ))


README_RUN = Job("readme_run", run_readme)
