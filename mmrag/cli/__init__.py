"""The ``mmrag`` command: parse arguments, call the library, print, and map errors to exit codes.

Exit codes: 0 success, 1 an mmrag error (message on stderr) or an interruption, 2 bad usage.
Each command module is small: it builds the library's objects through :mod:`mmrag.factory` (the composition
root), calls them, and prints; the library itself never prints or exits.
"""

from __future__ import annotations

import sys

import typer

from mmrag.cli import answer, eval, kb, mcp, models, search, ui  # noqa: F401  (they register their commands)
from mmrag.cli.common import cli
from mmrag.errors import MmragError
from mmrag.files.paths import printable

__all__ = ["cli", "main"]


def main() -> None:
    """Entry point of the ``mmrag`` console script."""
    try:
        cli()  # standalone: click prints usage errors and exits 2
    except MmragError as e:
        typer.echo(f"error: {printable(str(e))}", err=True)
        sys.exit(1)
