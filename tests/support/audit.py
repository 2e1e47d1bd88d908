"""File-open recording: an audit hook sees every open(), os.open() and Path.open() (for confinement tests)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_OPENED: list[str] | None = None
_INSTALLED = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], str | bytes):
        _OPENED.append(args[0].decode() if isinstance(args[0], bytes) else args[0])


@contextmanager
def recording_opens() -> Iterator[list[str]]:
    """Yield the list of paths opened (files of any kind, by any API) until the block ends."""
    global _OPENED, _INSTALLED
    if not _INSTALLED:  # an audit hook can't be removed: install one, once, that records only when asked
        sys.addaudithook(_audit)
        _INSTALLED = True
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None
