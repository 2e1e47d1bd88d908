"""The ``mmrag`` command: parse arguments, call the library, print, and map errors to exit codes.

Exit codes: 0 success, 1 an mmrag error (message on stderr) or an interruption, 2 bad usage. Under ``--json``
an error is a JSON object on stdout, ``{"error": "…", "type": "ImageNotFoundError"}``, with the same exit code.
Each command module is small: it builds the library's objects through :mod:`mmrag.factory` (the composition
root), calls them, and prints; the library itself never prints or exits. The command modules import nothing
heavy at the top (torch, chromadb, LangChain load inside the commands that need them), so that ``mmrag
--help`` and a mistyped argument answer at once.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from mmrag.cli import answer, eval, kb, mcp, models, search, ui  # noqa: F401  (they register their commands)
from mmrag.cli.common import OUTPUT, add_global_options, cli, emit_error
from mmrag.errors import MmragError
from mmrag.files.paths import printable

__all__ = ["cli", "main"]

for _command in cli.registered_commands:  # the global options work after the command's name too
    if _command.callback is not None:
        _command.callback = add_global_options(_command.callback)


def _json_requested() -> bool:
    """Whether this run was given ``--json`` (seen by the option, or in the arguments when parsing failed)."""
    if OUTPUT.json:
        return True
    args = sys.argv[1:]
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def main() -> None:
    """Entry point of the ``mmrag`` console script."""
    OUTPUT.json = False
    try:
        code = cli(standalone_mode=False)
    except MmragError as e:
        _fail(printable(str(e)), type(e).__name__, 1)
    except TyperException as e:  # Click's errors: usage (exit 2), bad files…
        show = getattr(e, "show", None)
        if not callable(show):
            raise
        code = int(getattr(e, "exit_code", 1))
        if not _json_requested():
            show()
            sys.exit(code)
        _fail(printable(e.format_message()), type(e).__name__, code)
    except typer.Abort:  # Ctrl-C, or end of input at a prompt
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)


def _fail(message: str, kind: str, code: int) -> None:
    if _json_requested():
        emit_error(message, kind)
    else:
        typer.echo(f"error: {message}", err=True)
    sys.exit(code)
