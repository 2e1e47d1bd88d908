"""What the LLM sees of the filesystem: sources relative to the knowledge base's folders, never absolute paths.

Tool results and error messages go to the LLM's provider. By default they carry no absolute path and no
knowledge-base location:

* a **source** is shown relative to the knowledge-base folder that holds it (``red_circle_01.png``,
  ``trips/2024/beach.jpg``): the image folders first, so an image's shown path is one the image tools accept
  back; a source outside every folder is shown by its file name alone;
* an **error message** has the same folders made relative (a folder itself by its name), the knowledge
  base's location replaced by ``<kb>``, the home folder by ``~``, and any other absolute path cut to
  ``…/file-name`` (unless the LLM sent it itself, as an argument of that call).

``full_paths=True`` (flag ``--full-paths``) turns this off: sources and messages go out as they are.
Artifacts (for programs, never sent to the LLM) always keep the absolute ``source``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath

from mmrag.files.paths import is_under

KB_PLACEHOLDER = "<kb>"
"""What error messages show instead of the knowledge base's location."""

_ABSOLUTE = re.compile(r"(?<![\w.:/~\\-])/[^\s'\"()\[\]{},;:*?<>|]+")
"""An absolute POSIX path in free text (not the ``//host/…`` of a URL, nor a fraction like ``and/or``)."""


class PathView:
    """How sources and messages are shown to the LLM (see the module doc).

    Args:
        folders: the knowledge base's folders now, image folders first (called on each use, so new folders
            show up).
        location: where the knowledge base lives (a directory or a server URL).
        full_paths: show everything as it is.
    """

    def __init__(self, folders: Callable[[], Sequence[Path]], location: str, *, full_paths: bool = False) -> None:
        self._folders = folders
        self.location = location
        self.full_paths = full_paths

    def show(self, source: str) -> str:
        """``source`` as the LLM sees it: relative to the folder that holds it, or its file name."""
        if self.full_paths or not source:
            return source
        if not PurePosixPath(source).is_absolute():
            return source
        for folder in self._folders():
            if is_under(source, folder) and source.rstrip("/") != folder.as_posix().rstrip("/"):
                return PurePosixPath(source).relative_to(folder.as_posix()).as_posix()
        return PurePosixPath(source).name or source

    def redact(self, message: str, keep: Iterable[str] = ()) -> str:
        """``message`` with folders made relative, the location, home and other absolute paths hidden.

        Args:
            message: an error message or warning.
            keep: texts the LLM itself sent (a call's arguments): an absolute path among them is echoed as
                given, unless it lies in a folder of the knowledge base (then it is shown relative).
        """
        if self.full_paths or not message:
            return message
        replacements: list[tuple[str, str]] = []
        for folder in self._folders():
            text = folder.as_posix().rstrip("/")
            if text:
                replacements += [(text + "/", ""), (text, folder.name or text)]
        if self.location:
            replacements.append((self.location.rstrip("/"), KB_PLACEHOLDER))
        home = Path.home().as_posix().rstrip("/")
        if len(home) > 1:
            replacements += [(home + "/", "~/"), (home, "~")]
        # Longest first, so a folder inside the KB's location or home is made relative, not shortened.
        for old, new in sorted(replacements, key=lambda r: len(r[0]), reverse=True):
            message = _replace_path(message, old, new)
        kept = {k.strip() for k in keep}
        return _ABSOLUTE.sub(lambda m: m.group(0) if m.group(0) in kept else _shorten(m), message)


def _replace_path(message: str, old: str, new: str) -> str:
    """Replace ``old`` where it stands as a whole path prefix (``/a/b`` not inside ``/a/bc``)."""
    pattern = re.escape(old) if old.endswith("/") else re.escape(old) + r"(?![^\s'\"()\[\]{},;:])"
    return re.sub(r"(?<![\w.])" + pattern, lambda _: new, message)


def _shorten(match: re.Match[str]) -> str:
    name = PurePosixPath(match.group(0)).name
    return f"…/{name}" if name else "…"
