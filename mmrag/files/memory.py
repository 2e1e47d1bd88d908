"""Handing freed memory back to the system after a large, short-lived allocation (a decoded image, OCR)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _malloc_trim() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (macOS, musl…): nothing to do
        return None


def release_freed_memory() -> None:
    """glibc keeps freed blocks in each thread's arena, so RSS would grow by the largest allocation each thread
    ever made (a full-size image, an OCR pass's feature maps); ``malloc_trim`` returns them (a no-op elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
