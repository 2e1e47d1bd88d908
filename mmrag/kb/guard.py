"""Confined image arguments: what an LLM (or any caller) may name as an image, and nothing else.

An image argument is either

* a **knowledge-base image id** (``img-…``, as search results show them): its stored vector is used and
  no file is opened; or
* a **path to a file under an allowed root**. Relative paths are taken relative to each root in turn.

Everything else is refused with :class:`~mmrag.errors.PathNotAllowedError` *before* any file is opened:

* URLs and anything with a scheme (``http://``, ``file:``, ``data:``…): mmrag never fetches;
* NUL bytes and other control characters;
* ``..`` components, ``~`` (no home expansion) and hidden components (``.ssh``, ``.env``: folder sync skips
  them too);
* absolute paths outside the roots (checked on the text of the path, so ``/etc/passwd`` is not even looked
  at); and
* symlinks, anywhere in the path, that lead out of the roots (checked on the resolved real path, which is
  then the path that is read).

**Roots.** By default, the folders that hold the knowledge base's indexed images (each image's parent
folder, nested folders collapsed into their top-most one), refreshed when the number of images changes.
The filesystem root and the user's home folder themselves are never derived roots (their images stay
reachable by id). Explicit ``roots`` are added to them.

A check-then-open race (a folder inside a root replaced by a symlink between the check and the read) is
outside this guard's model: the roots are the user's own folders.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.errors import ImageNotFoundError, PathNotAllowedError
from mmrag.files.images import ImageSource
from mmrag.files.paths import is_under, source_of
from mmrag.kb.records import IMAGE
from mmrag.kb.store import Store
from mmrag.vectors import Matrix

IMAGE_ID = re.compile(r"img-[0-9a-f]{24}")
"""The shape of an image document's id (see :func:`mmrag.kb.records.image_id`)."""
TEXT_ID = re.compile(r"txt-[0-9a-f]{24}-\d{5}")
MAX_ARGUMENT_CHARS = 4096
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ImageRef:
    """A confined image argument.

    Attributes:
        argument: the argument as given.
        source: the image's path: the knowledge base's record of it, or the resolved file.
        id: the knowledge-base id, when the argument was one.
        vector: the stored embedding, when the argument was an id (no file needs reading).
        path: the resolved file to read, when the argument was a path.
    """

    argument: str
    source: str
    id: str | None = None
    vector: Matrix | None = None
    path: Path | None = None

    @property
    def image(self) -> ImageSource | Matrix:
        """What to embed or classify: the stored vector, or the confined path."""
        if self.vector is not None:
            return self.vector
        assert self.path is not None  # one of the two is always set
        return self.path

    def to_json(self) -> dict[str, Any]:
        return {"argument": self.argument, "id": self.id, "source": self.source}


class ImageGuard:
    """Resolves image arguments against a knowledge base and allowed roots (see the module doc).

    Args:
        store: the knowledge base's store, whose image ids are accepted and whose image folders are roots.
        roots: more folders whose files may be read.
    """

    def __init__(self, store: Store, roots: Iterable[str | Path] | None = None) -> None:
        self.store = store
        self.extra_roots = tuple(_absolute(Path(r)) for r in roots or ())
        self._kb_roots: tuple[Path, ...] = ()
        self._kb_count = -1
        self._lock = threading.Lock()

    @property
    def roots(self) -> tuple[Path, ...]:
        """The allowed roots now: the knowledge base's image folders, then the explicit ones."""
        count = self.store.count(IMAGE)
        with self._lock:
            if count != self._kb_count:
                self._kb_roots = tuple(kb_image_roots(self.store))
                self._kb_count = count
            return _collapse([*self._kb_roots, *self.extra_roots])

    def resolve(self, value: str) -> ImageRef:
        """The image ``value`` names.

        Raises:
            PathNotAllowedError: the argument is refused (nothing was read).
            ImageNotFoundError: an allowed argument names no image id or file.
        """
        if isinstance(value, str) and IMAGE_ID.fullmatch(value.strip()):  # ids need no roots (nor their lookup)
            return resolve_image_argument(value, roots=(), store=self.store)
        return resolve_image_argument(value, roots=self.roots, store=self.store)


def resolve_image_argument(value: str, *, roots: Sequence[str | Path], store: Store | None) -> ImageRef:
    """Resolve an image argument: a knowledge-base image id, or a file under one of ``roots``.

    Args:
        value: the argument, e.g. from an LLM's tool call.
        roots: the folders whose files may be read (used as given; see :class:`ImageGuard` for defaults).
        store: the store for image ids (None accepts paths only).

    Raises:
        PathNotAllowedError: the argument is refused (nothing was read).
        ImageNotFoundError: an allowed argument names no image id or file.
    """
    if not isinstance(value, str):
        msg = f"an image argument must be a string (an image id or a path), got {type(value).__name__}"
        raise PathNotAllowedError(msg, repr(value))
    text = value.strip()
    _refuse_shape(value, text)
    if IMAGE_ID.fullmatch(text) and store is not None:
        return _by_id(text, store)
    if TEXT_ID.fullmatch(text):
        msg = f"{text} is a text passage's id; image tools take an image id (img-…) or an image path"
        raise PathNotAllowedError(msg, value)
    return _by_path(value, text, [_absolute(Path(r)) for r in roots])


def kb_image_roots(store: Store) -> list[Path]:
    """The folders holding the knowledge base's images, nested ones collapsed (never ``/`` or home)."""
    never = {Path(os.sep), _absolute(Path.home())}
    folders = {Path(str(meta.get("source", ""))).parent for meta in store.metadatas(IMAGE).values()}
    return list(_collapse(f for f in folders if f.is_absolute() and f not in never))


def _refuse_shape(value: str, text: str) -> None:
    """Refuse arguments by their text alone: empty, too long, control characters, URLs."""
    if "\x00" in value:
        msg = "the image argument contains a NUL byte; give an image id (img-…) or a plain path"
        raise PathNotAllowedError(msg, value)
    if _CONTROL.search(value.strip()):
        msg = "the image argument contains control characters; give an image id (img-…) or a plain path"
        raise PathNotAllowedError(msg, value)
    if not text:
        msg = "the image argument is empty; give an image id (img-…) from the search results or an image path"
        raise PathNotAllowedError(msg, value)
    if len(text) > MAX_ARGUMENT_CHARS:
        msg = f"the image argument is {len(text)} characters long, over the limit of {MAX_ARGUMENT_CHARS}"
        raise PathNotAllowedError(msg, value[:80] + "…")
    if _SCHEME.match(text) and not re.fullmatch(r"[A-Za-z]:[\\/].*", text):  # C:\… is a path, not a URL
        msg = (
            f"{text[:80]!r} is a URL; mmrag never fetches URLs. Give an image id (img-…) from the search "
            "results or the path of an image in the knowledge base's folders"
        )
        raise PathNotAllowedError(msg, value)


def _by_id(text: str, store: Store) -> ImageRef:
    found = store.get(IMAGE, [text], embeddings=True)
    if not found:
        msg = f"no image with id {text} in the knowledge base at {store.location}"
        raise ImageNotFoundError(msg, text)
    record = found[0]
    vector = np.asarray(record.embedding, dtype=np.float32)
    return ImageRef(argument=text, source=str(record.metadata.get("source", "")), id=text, vector=vector)


def _by_path(value: str, text: str, roots: list[Path]) -> ImageRef:
    path = Path(text)
    parts = path.parts
    if ".." in parts:
        msg = f"{text!r} contains '..'; image paths must stay inside the allowed folders"
        raise PathNotAllowedError(msg, value)
    if text.startswith("~"):
        msg = f"{text!r} starts with '~'; give an absolute path or one relative to the knowledge base's folders"
        raise PathNotAllowedError(msg, value)
    if any(p.startswith(".") and p != "." for p in parts):
        msg = f"{text!r} names a hidden file or folder; mmrag does not read those"
        raise PathNotAllowedError(msg, value)
    if not roots:
        msg = f"{text!r} is a path, but no folders are allowed; give an image id (img-…) from the search results"
        raise PathNotAllowedError(msg, value)
    real_roots = [Path(os.path.realpath(root)) for root in roots]
    if path.is_absolute():
        candidate = Path(os.path.normpath(path))
        if not any(is_under(candidate, root) for root in [*roots, *real_roots]):  # text only: no lookup yet
            msg = f"{text!r} is outside the allowed folders ({_names(roots)}); nothing was read"
            raise PathNotAllowedError(msg, value)
        candidates = [candidate]
    else:
        candidates = [Path(os.path.normpath(root / path)) for root in roots]
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        if not any(is_under(real, root) for root in real_roots):
            msg = f"{text!r} is a symbolic link (or inside one) leading outside the allowed folders; nothing was read"
            raise PathNotAllowedError(msg, value)
        if real.is_file():
            return ImageRef(argument=text, source=source_of(real), path=real)
    msg = f"no image file {text!r} under the allowed folders ({_names(roots)})"
    raise ImageNotFoundError(msg, text)


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(path.expanduser().absolute()))


def _collapse(folders: Iterable[Path]) -> tuple[Path, ...]:
    """The folders without those inside another one, in order."""
    unique = list(dict.fromkeys(folders))
    return tuple(f for f in unique if not any(other != f and is_under(f, other) for other in unique))


def _names(roots: Sequence[Path]) -> str:
    shown = ", ".join(str(r) for r in roots[:3])
    return shown + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")
