"""The one way tests run the ``mmrag`` command, in-process (fast) or as a real process (the entry point).

Both run it in the isolated environment every test needs: ``MMRAG_HOME`` in a folder the test owns,
``MMRAG_TEXT_RUNTIME=torch`` (the default, ``auto``, would export the text tower to ONNX in the background
for each fresh home; the ONNX tests cover that runtime), and none of the user's ``MMRAG_*`` settings.
Both return a :class:`CliResult` (exit code, stdout, stderr).

- :func:`run_cli` (and the ``mmrag_cli`` fixture) calls :func:`mmrag.cli.main`, the console script's own
  function, inside Click's stream isolation: usage errors exit 2, an ``MmragError`` exits 1 with
  ``error: …`` on stderr, exactly as the installed command does. About a second per command.
- :func:`run_entry_point` (``mmrag_cli.entry_point``) runs ``python -m mmrag`` in a subprocess: for the few
  tests about the real entry point, exit status and process environment. Several seconds per command.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TEXT_RUNTIME = "torch"


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def _is_user_setting(key: str) -> bool:
    return key.startswith("MMRAG_") and not key.startswith("MMRAG_TEST_")


def isolated_environ(
    home: Path, env: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A process environment: ``base`` (default: this process's) without the user's ``MMRAG_*`` settings,
    with mmrag's home in ``home`` and query texts on torch, then ``env``."""
    kept = {k: v for k, v in (os.environ if base is None else base).items() if not _is_user_setting(k)}
    return kept | {"MMRAG_HOME": str(home), "MMRAG_TEXT_RUNTIME": TEXT_RUNTIME} | dict(env or {})


def _checked(result: CliResult, check: bool) -> CliResult:
    if check and result.exit_code != 0:
        msg = f"mmrag {' '.join(result.args)}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        raise AssertionError(msg)
    return result


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")  # sys.exit("message") prints it and exits 1
    return 1


def run_cli(
    *args: str, home: Path, input: str | None = None, env: Mapping[str, str] | None = None, check: bool = True
) -> CliResult:
    """Run ``mmrag ARGS`` in this process, through :func:`mmrag.cli.main` (the console script's function).

    The environment is isolated with a :class:`pytest.MonkeyPatch` for the call (Settings read ``os.environ``
    when a command runs), and ``input`` is its stdin. With ``check``, a non-zero exit fails the test with
    the output.
    """
    from typer.testing import CliRunner

    import mmrag.cli
    from mmrag.cli.common import cli as app

    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if _is_user_setting(key):
                mp.delenv(key)
        for key, value in isolated_environ(home, env).items():
            if os.environ.get(key) != value:
                mp.setenv(key, value)
        # main() calls cli() with no arguments: hand it this call's arguments and a fixed program name
        # (Click would guess it from sys.argv, which is pytest's).
        mp.setattr(mmrag.cli, "cli", functools.partial(app, args=list(args), prog_name="mmrag"))
        mp.setattr(sys, "excepthook", sys.excepthook)  # Typer installs its own when called
        with CliRunner().isolation(input=input) as (out, err, _):
            try:
                try:
                    mmrag.cli.main()
                    code = 0
                except SystemExit as e:
                    code = _exit_code(e.code)
            except BaseException as e:  # a bug, not an exit: keep what was printed with the traceback
                sys.stdout.flush()
                sys.stderr.flush()
                e.add_note(f"mmrag {' '.join(args)} printed:\n{out.getvalue().decode()}\n{err.getvalue().decode()}")
                raise
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            result = CliResult(tuple(args), code, out.getvalue().decode(), err.getvalue().decode())
    return _checked(result, check)


def run_entry_point(
    *args: str,
    home: Path,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    cwd: Path | None = None,
    timeout: float = 300,
    base: Mapping[str, str] | None = None,
) -> CliResult:
    """Run ``python -m mmrag ARGS`` as a real process in the isolated environment (made from ``base``, by
    default this process's environment)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mmrag", *args],
        input=input,
        capture_output=True,
        text=True,
        env=isolated_environ(home, env, base=base),
        cwd=cwd,
        timeout=timeout,
    )
    return _checked(CliResult(tuple(args), proc.returncode, proc.stdout, proc.stderr), check)


class MmragCli:
    """The CLI with a default home: ``mmrag_cli("status", "--json")`` in-process, ``mmrag_cli.entry_point(…)``
    as a process. Each call may name another ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(self, *args: str, home: Path | None = None, **kw: Any) -> CliResult:
        return run_cli(*args, home=home or self.home, **kw)

    def entry_point(self, *args: str, home: Path | None = None, **kw: Any) -> CliResult:
        return run_entry_point(*args, home=home or self.home, **kw)
