"""Output made comparable with a snapshot: what depends on the machine or the run becomes a placeholder."""

from __future__ import annotations

import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_SECONDS = re.compile(r"\(\d+(?:\.\d+)?s;")  # a sync's timing: "(12.1s; 48 images and 25 text chunks embedded)"


def normalise(text: str, **paths: Path | str) -> str:
    """``text`` with each named path (as given and resolved) replaced by ``<NAME>``, longest first; a sync's
    seconds by ``<seconds>``; terminal styles removed; trailing spaces of each line stripped."""
    names: dict[str, str] = {}
    for name, path in paths.items():
        for variant in {str(path), Path(path).resolve().as_posix()}:
            names[variant] = f"<{name.upper()}>"
    for variant in sorted(names, key=len, reverse=True):
        text = text.replace(variant, names[variant])
    text = _SECONDS.sub("(<seconds>s;", _ANSI.sub("", text))
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
