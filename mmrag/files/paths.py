"""Path containment, one rule for the whole library: is a path (or a stored ``source``) inside a folder?"""

from __future__ import annotations

import os
from pathlib import Path


def is_under(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``folder`` itself or lies inside it, judged on the text of both (no lookup).

    Both should be absolute and normalised alike (stored sources are resolved POSIX paths). ``/a/bc`` is not
    under ``/a/b``.
    """
    p = Path(path).as_posix()
    root = Path(folder).as_posix().rstrip("/")
    return p == root or p.startswith(root + "/")
