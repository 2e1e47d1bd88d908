"""Uploaded images: check them by content and size, then keep them where the knowledge base can index them.

The UI hands every upload to :func:`save_upload`; nothing is trusted from the file's name. A ``.png`` that
is not an image is refused with :class:`~mmrag.errors.UploadNotImageError`, one over the size limit with
:class:`~mmrag.errors.UploadTooLargeError`, and one that is a valid format but damaged or a decompression
bomb with the :class:`~mmrag.errors.ImageError` that :func:`~mmrag.files.images.load_image` raises. A refused
upload leaves no file behind.

Kept uploads are named by their content (``{stem}-{sha256 prefix}.{format}``) in one folder, and the same
bytes uploaded again, under any name, keep the first file: one file, indexed once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mmrag.config import Settings
from mmrag.errors import ImageError, UploadError, UploadNotImageError, UploadTooLargeError
from mmrag.files.images import image_format, load_image

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
"""The file extension a kept upload gets, by the format its content has."""
UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff")
"""Extensions offered by the upload widget (the content is what is checked, not these)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SavedUpload:
    """An upload that passed the checks: where it was kept and its format by content."""

    name: str
    path: Path
    format: str


def upload_folder(settings: Settings) -> Path:
    """Where the UI keeps uploaded images (``MMRAG_HOME/uploads``)."""
    return settings.home / "uploads"


def safe_stem(name: str) -> str:
    """A file-name stem with no directories, hidden-file dots or odd characters (``"upload"`` if nothing is left)."""
    stem = Path(name.replace("\\", "/")).name
    stem = Path(stem).stem if "." in stem else stem
    stem = _UNSAFE.sub("_", stem).strip("._-")
    return stem[:60] or "upload"


def check_size(name: str, size: int, max_mb: float) -> None:
    """Raise :class:`UploadTooLargeError` if ``size`` bytes is over ``max_mb`` megabytes."""
    if size > max_mb * 1024 * 1024:
        msg = (
            f"{name} is {size / 1024 / 1024:.1f} MB, over the {max_mb:g} MB upload limit "
            "(raise it with MMRAG_MAX_UPLOAD_MB)"
        )
        raise UploadTooLargeError(msg, name)


def save_upload(name: str, data: bytes, folder: Path, *, max_mb: float, max_megapixels: float = 100.0) -> SavedUpload:
    """Check one upload by size and content, and keep it in ``folder``.

    Args:
        name: the name the user's file had (used for messages and the kept file's stem only).
        data: its bytes.
        folder: where to keep it (created if missing).
        max_mb: the size limit in megabytes.
        max_megapixels: the decompression-bomb limit.

    Returns:
        Where it was kept and its format.

    Raises:
        UploadTooLargeError: more than ``max_mb``.
        UploadNotImageError: the content is empty or not an image mmrag accepts, whatever the name says.
        ImageError: a damaged image, or one over ``max_megapixels`` (``ImageTooLargeError``).
        UploadError: the folder can't be written.
    """
    check_size(name, len(data), max_mb)
    if not data:
        msg = f"{name} is empty"
        raise UploadNotImageError(msg, name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=folder)
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
    except OSError as e:
        msg = f"cannot keep the upload {name} in {folder}: {e.strerror or e}"
        raise UploadError(msg, name) from e
    tmp = Path(tmp_name)
    try:
        fmt = image_format(tmp)
        if fmt is None or fmt not in EXTENSIONS:
            msg = f"{name} is not an image (its content is not PNG, JPEG, WebP, GIF, BMP or TIFF); it was refused"
            raise UploadNotImageError(msg, name)
        try:
            load_image(data, max_megapixels=max_megapixels)  # damaged, or a decompression bomb
        except ImageError as e:
            msg = f"{name}: {e}"
            raise type(e)(msg, name) from e
        digest = hashlib.sha256(data).hexdigest()[:12]
        same = sorted(folder.glob(f"*-{digest}.{EXTENSIONS[fmt]}"))
        if same:  # the same bytes were uploaded before, under this name or another: keep the one file
            return SavedUpload(name, same[0], fmt)
        target = folder / f"{safe_stem(name)}-{digest}.{EXTENSIONS[fmt]}"
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return SavedUpload(name, target, fmt)
