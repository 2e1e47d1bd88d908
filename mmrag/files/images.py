"""Safe image decoding: the one place in mmrag that calls :func:`PIL.Image.open`.

Every image mmrag reads goes through :func:`load_image`, which returns a fully loaded RGB image or
raises one of the typed :class:`~mmrag.errors.ImageError` subclasses; no raw Pillow exception escapes.

Decisions:

* Formats are identified by content, never by extension, and Pillow may only use the plugins of
  :data:`ALLOWED_FORMATS` to decode. Camera "MPO" files are JPEGs with extra frames and count as JPEG.
* An empty file (or ``b""``) raises :class:`~mmrag.errors.UnsupportedImageError`: it holds no image.
* The decompression-bomb limit ``max_megapixels`` is checked against the header size before any pixel
  is decoded. Pillow's own global guard, ``PIL.Image.MAX_IMAGE_PIXELS``, is left as it is: its warning
  is silenced while mmrag opens a file (our check replaces it), and its error (an image over twice that
  many pixels) becomes :class:`~mmrag.errors.ImageTooLargeError`. An application that needs images over
  about 179 megapixels must raise Pillow's limit itself as well.
* Truncated files are errors: ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeAlias

from PIL import Image, ImageOps, UnidentifiedImageError

from mmrag.config import DEFAULT_MAX_MEGAPIXELS
from mmrag.errors import (
    ConfigError,
    CorruptImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from mmrag.files.memory import release_freed_memory

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MAX_MEGAPIXELS",
    "ImageSource",
    "describe",
    "image_format",
    "load_image",
    "original_size",
]

ImageSource: TypeAlias = str | os.PathLike[str] | bytes | Image.Image
"""A path to an image file, its encoded bytes, or an already open Pillow image."""

ALLOWED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})

DEFAULT_DECODE_MEGAPIXELS = DEFAULT_MAX_MEGAPIXELS
"""The pixels the encoder lets its decoding threads hold at once (about 0.4 GB: one image at the bomb limit),
whatever the images' sizes."""
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"})
SIZE_KEY = "mmrag_original_size"
"""Where :func:`load_image` keeps the image's real size in ``Image.info`` (see :func:`original_size`)."""
_LIMIT_HINT = "raise max_megapixels (flag --max-megapixels, env MMRAG_MAX_MEGAPIXELS) if you trust it"
# What Pillow's plugins and decoders raise on bad data (DecompressionBombError is handled on its own).
_DECODE_ERRORS = (
    OSError,
    EOFError,
    SyntaxError,
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    struct.error,
    zlib.error,
)
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "PA")
_MAGIC = {  # WebP is "RIFF", a length, then "WEBP": see _sniff
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"II+\x00": "TIFF",  # BigTIFF
    b"MM\x00+": "TIFF",
}


def describe(source: ImageSource) -> str:
    """Name an image source for messages: the path, ``"<bytes>"`` or ``"<PIL image>"``."""
    if isinstance(source, bytes):
        return "<bytes>"
    if isinstance(source, Image.Image):
        return "<PIL image>"
    return os.fspath(source)


def image_format(path: str | os.PathLike[str]) -> str | None:
    """Identify an image file by its content, reading only its header.

    Args:
        path: The file to look at.

    Returns:
        The Pillow format name (one of :data:`ALLOWED_FORMATS`), or None for anything else: a file of
        another format, a non-image, an empty or unreadable file, a directory or a missing path.
    """
    try:
        if not Path(path).is_file():  # also keeps a FIFO from blocking the open below
            return None
        with Path(path).open("rb") as fp:
            return _identify(fp, _pillow_formats())
    except OSError:
        return None


class PixelBudget:
    """Bounds the pixels being decoded at once across threads, so memory doesn't grow with how large the images
    in a batch are: a decode waits until the pixels already in flight plus its own fit in the budget (an image
    larger than the whole budget decodes alone).

    Args:
        megapixels: the budget. Pillow holds 4 bytes a pixel while decoding, so 100 megapixels is ~0.4 GB.
    """

    def __init__(self, megapixels: float = DEFAULT_DECODE_MEGAPIXELS) -> None:
        self.limit = max(1, int(megapixels * 1_000_000))
        self._used = 0
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        need = min(max(1, pixels), self.limit)
        with self._changed:
            self._changed.wait_for(lambda: self._used == 0 or self._used + need <= self.limit)
            self._used += need
        try:
            yield
        finally:
            with self._changed:
                self._used -= need
                self._changed.notify_all()


def load_image(
    source: ImageSource,
    *,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    min_side: int | None = None,
    budget: PixelBudget | None = None,
) -> Image.Image:
    """Decode an image safely into a fully loaded RGB image.

    EXIF orientation is applied, only the first frame of an animation is kept, transparency is
    composited onto white, and 16-bit or float samples are scaled (not clipped) to 8 bits.

    Args:
        source: A path, encoded bytes, or a Pillow image (converted with the same rules, not re-read).
        max_megapixels: Refuse images with more pixels than this (the decompression-bomb limit).
        min_side: If given, the image may come back smaller, with both sides at least this long (and the
            aspect kept): JPEGs are decoded at 1/2, 1/4 or 1/8 scale, and other images much larger than needed
            are reduced right after decoding, before any copy is made. Much faster and lighter when the image
            will be resized down anyway; :func:`original_size` still gives its real size.
        budget: decode under this shared pixel budget (see :class:`PixelBudget`).

    Returns:
        A new image in mode ``"RGB"`` that holds no open file.

    Raises:
        ImageNotFoundError: The path is missing or is not a regular file.
        UnsupportedImageError: The content is empty, not an image, or not one of :data:`ALLOWED_FORMATS`.
        ImageTooLargeError: The image has more than ``max_megapixels`` megapixels.
        CorruptImageError: The image is truncated or damaged.
        ImageError: The file could not be read.
        ConfigError: ``max_megapixels`` or ``min_side`` is not positive.
    """
    if max_megapixels <= 0 or (min_side is not None and min_side < 1):
        msg = f"max_megapixels and min_side must be positive, got {max_megapixels} and {min_side}"
        raise ConfigError(msg)
    name = describe(source)
    if isinstance(source, Image.Image):
        _check_size(source.size, name, max_megapixels)
        with _pillow_errors(name, max_megapixels):
            return _finish(source)
    if isinstance(source, bytes):
        return _decode(io.BytesIO(source), name, max_megapixels, min_side, budget)
    path = Path(source)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist or is not a regular file"
        msg = f"image {name} {what}"
        raise ImageNotFoundError(msg, name)
    try:
        fp = path.open("rb")
    except OSError as e:
        msg = f"cannot read image {name}: {e.strerror or e}"
        raise ImageError(msg, name) from e
    with fp:
        return _decode(fp, name, max_megapixels, min_side, budget)


def _decode(
    fp: IO[bytes], name: str, max_megapixels: float, min_side: int | None, budget: PixelBudget | None
) -> Image.Image:
    with _pillow_errors(name, max_megapixels):
        head = fp.read(16)
        if not head:
            msg = f"{name} is empty (0 bytes), not an image"
            raise UnsupportedImageError(msg, name)
        try:
            im = Image.open(fp, formats=_pillow_formats())
        except UnidentifiedImageError as e:
            raise _unidentified(fp, head, name) from e
        with im:
            _check_size(im.size, name, max_megapixels)
            full = im.size
            if min_side is not None and _canonical(im.format) == "JPEG":
                im.draft("RGB", (min_side, min_side))
            with budget.hold(full[0] * full[1]) if budget is not None else contextlib.nullcontext():
                im.load()
                reduced = _reduced(im, min_side)
                if reduced is not im:
                    im.close()  # free the full-size pixels now, while the budget still counts them
                    if full[0] * full[1] >= _TRIM_PIXELS:
                        release_freed_memory()
            decoded = reduced.size
            out = _finish(reduced)
            # the image's real size (a reduced JPEG decode is smaller), turned as EXIF turned the pixels
            turned = out.size != decoded and out.size == decoded[::-1]
            out.info[SIZE_KEY] = full[::-1] if turned else full
            return out


def _reduced(im: Image.Image, min_side: int | None) -> Image.Image:
    """The decoded image shrunk by the largest whole factor that keeps both sides at least ``min_side`` (at least
    2x smaller, else unchanged): a 99-megapixel PNG must not be copied at full size by the conversions that follow."""
    if min_side is None:
        return im
    factor = min(im.size) // min_side
    if factor < 2 or im.mode not in _REDUCIBLE_MODES:
        return im
    core: Any = getattr(im, "im", None)
    if im.mode in ("LA", "RGBA") and core is not None and hasattr(core, "reduce"):
        # Pillow's public reduce() premultiplies alpha through a full-size copy (+4 bytes a pixel); averaging
        # straight colour is a negligible difference at CLIP's 224 px, and the copy is what a bomb-sized image
        # can't afford.
        return im._new(core.reduce((factor, factor), (0, 0, *im.size)))
    return im.reduce(factor)


_TRIM_PIXELS = 16_000_000
"""After freeing an image this large, hand the memory back to the system (see :mod:`mmrag.files.memory`)."""


def original_size(image: Image.Image) -> tuple[int, int]:
    """The (width, height) of the image as stored in its file, upright: :func:`load_image` may decode a JPEG at a
    reduced size, and this is what it had before."""
    size = image.info.get(SIZE_KEY)
    if isinstance(size, tuple) and len(size) == 2:
        return int(size[0]), int(size[1])
    return image.size


def _finish(im: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert to RGB; always returns a new image."""
    return _to_rgb(ImageOps.exif_transpose(im))


def _to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: scale deep samples, composite transparency onto white."""
    if im.mode in (*_SIXTEEN_BIT, "I", "F"):
        im = _to_8bit(im)
    if im.mode == "La":
        im = im.convert("LA")
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _to_8bit(im: Image.Image) -> Image.Image:
    """Map one-channel 16-bit, 32-bit integer or float samples onto 0..255 (mode ``"L"``).

    ``I;16`` samples are 16-bit. For ``I`` and ``F`` the value range decides: 0..1 floats are
    fractions, values within 0..255 are kept, integers within 0..65535 are 16-bit samples, and any
    other range is stretched linearly from its minimum to its maximum.
    """
    import numpy as np

    a = np.nan_to_num(np.asarray(im, dtype=np.float64))
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode in _SIXTEEN_BIT or (im.mode == "I" and lo >= 0 and 255 < hi <= 65535):
        a = a / 257
    elif im.mode == "F" and lo >= 0 and hi <= 1:
        a = a * 255
    elif lo < 0 or hi > 255:
        a = (a - lo) * (255 / (hi - lo) if hi > lo else 0.0)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))


def _check_size(size: tuple[int, int], name: str, max_megapixels: float) -> None:
    width, height = size
    megapixels = width * height / 1e6
    if megapixels > max_megapixels:
        msg = (
            f"{name} is {width}x{height} = {megapixels:.1f} megapixels, over the limit of "
            f"{max_megapixels:g} megapixels (a guard against decompression bombs); {_LIMIT_HINT}"
        )
        raise ImageTooLargeError(msg, name)


def _unidentified(fp: IO[bytes], head: bytes, name: str) -> ImageError:
    """The error for content Pillow's allowed plugins could not open."""
    allowed = ", ".join(sorted(ALLOWED_FORMATS))
    claimed = _sniff(head)
    if claimed:
        msg = f"{name} starts like a {claimed} file but its header is damaged"
        return CorruptImageError(msg, name)
    detected = _identify(fp, None) or _iso_brand(head)  # headers only: nothing outside ALLOWED_FORMATS is decoded
    what = f"a {detected} image" if detected else "not an image format mmrag recognises"
    msg = f"{name} is {what}; mmrag reads only {allowed}"
    return UnsupportedImageError(msg, name)


_ISO_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"mif1": "HEIF"}
_ISO_BRANDS |= {b"avif": "AVIF", b"avis": "AVIF"}


def _iso_brand(head: bytes) -> str | None:
    """HEIC or AVIF by the ISO-BMFF ``ftyp`` box at byte 4 (Pillow has no plugin to name them)."""
    return _ISO_BRANDS.get(head[8:12]) if head[4:8] == b"ftyp" else None


def _identify(fp: IO[bytes], formats: list[str] | None) -> str | None:
    """Pillow's name for the format of ``fp``, reading only the header; None if it cannot tell."""
    try:
        with _no_bomb_warning(), Image.open(fp, formats=formats) as im:
            return _canonical(im.format)
    except Image.DecompressionBombError:  # a huge image is still an image: name it by its magic bytes
        fp.seek(0)
        return _sniff(fp.read(16))
    except _DECODE_ERRORS:
        return None


def _sniff(head: bytes) -> str | None:
    """The allowed format whose magic bytes ``head`` starts with, if any."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for magic, fmt in _MAGIC.items() if head.startswith(magic)), None)


def _canonical(fmt: str | None) -> str | None:
    return "JPEG" if fmt == "MPO" else fmt


@functools.cache
def _pillow_formats() -> list[str]:
    """The allowed formats this Pillow build can read (WebP support is optional in Pillow)."""
    Image.init()
    return sorted(fmt for fmt in ALLOWED_FORMATS if fmt in Image.OPEN)


@contextmanager
def _pillow_errors(name: str, max_megapixels: float) -> Iterator[None]:
    """Turn whatever Pillow raises while decoding into mmrag's typed errors."""
    try:
        with _no_bomb_warning():
            yield
    except Image.DecompressionBombError as e:  # over twice PIL.Image.MAX_IMAGE_PIXELS: Pillow refuses
        cap = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
        msg = (
            f"{name} has more than {cap:.1f} megapixels, over the limit of {min(cap, max_megapixels):g} "
            f"megapixels; {_LIMIT_HINT} (beyond {cap:.1f} megapixels, also PIL.Image.MAX_IMAGE_PIXELS)"
        )
        raise ImageTooLargeError(msg, name) from e
    except _DECODE_ERRORS as e:
        msg = f"{name} is corrupt or truncated and cannot be decoded: {e}"
        raise CorruptImageError(msg, name) from e


@contextmanager
def _no_bomb_warning() -> Iterator[None]:
    """Silence Pillow's DecompressionBombWarning: :func:`_check_size` enforces mmrag's own limit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield
