"""Paths as mmrag stores them: containment (one rule for the whole library) and names that aren't UTF-8.

A file name on Linux is bytes; Python shows bytes that aren't UTF-8 as surrogate escapes, which can't be encoded
to UTF-8 (ids, Chroma, JSON). mmrag stores and prints such names with ``\\xNN`` escapes (:func:`printable`) and
keeps reading the real file (:func:`path_of` turns a stored ``source`` back into it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def is_under(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``folder`` itself or lies inside it, judged on the text of both (no lookup).

    Both should be absolute and normalised alike (stored sources are resolved POSIX paths). ``/a/bc`` is not
    under ``/a/b``.
    """
    p = printable(Path(path).as_posix())
    root = printable(Path(folder).as_posix()).rstrip("/")
    return p == root or p.startswith(root + "/")


def printable(text: str) -> str:
    """``text`` as valid UTF-8: bytes a file name held that aren't UTF-8 (Python keeps them as surrogate escapes)
    become ``\\xNN``. Every path that goes into an id, a stored ``source``, a message or JSON passes here."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def source_of(path: Path) -> str:
    """The stored ``source`` of a file: its absolute POSIX path, made :func:`printable`."""
    return printable(path.as_posix())


_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def path_of(source: str) -> Path:
    """The file a stored ``source`` names, undoing :func:`printable` for names that aren't UTF-8."""
    path = Path(source)
    if "\\x" not in source or path.exists():
        return path
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), source.encode("utf-8"))
    return Path(os.fsdecode(raw))
