"""Small JPEG thumbnails, stored with each image document for display (a few KB, not the photo)."""

from __future__ import annotations

import base64
import io

from PIL import Image

THUMBNAIL_SIDE = 160
DATA_URI_PREFIX = "data:image/jpeg;base64,"


def thumbnail_data_uri(image: Image.Image, max_side: int = THUMBNAIL_SIDE, quality: int = 80) -> str:
    """A ``data:image/jpeg;base64,…`` URI of ``image`` shrunk to fit ``max_side`` (never enlarged)."""
    small = image.convert("RGB")
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality, optimize=True)
    return DATA_URI_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail_bytes(data_uri: str) -> bytes:
    """The JPEG bytes inside a thumbnail data URI (b"" when it is not one)."""
    if not data_uri.startswith(DATA_URI_PREFIX):
        return b""
    return base64.b64decode(data_uri[len(DATA_URI_PREFIX) :])
