"""mmrag: multimodal RAG over images and text with CLIP, Chroma and LangChain.

The public API is imported lazily, so ``import mmrag`` is fast and does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ClipEmbeddings": "mmrag.embeddings",
    "ClipModel": "mmrag.clip",
    "EncodedImages": "mmrag.clip",
    "Settings": "mmrag.config",
    "load_image": "mmrag.images",
    "MmragError": "mmrag.errors",
    "ConfigError": "mmrag.errors",
    "ImageError": "mmrag.errors",
    "ImageNotFoundError": "mmrag.errors",
    "UnsupportedImageError": "mmrag.errors",
    "ImageTooLargeError": "mmrag.errors",
    "CorruptImageError": "mmrag.errors",
    "ModelError": "mmrag.errors",
    "UnknownModelError": "mmrag.errors",
    "ModelUnavailableError": "mmrag.errors",
    "UnsafeCheckpointError": "mmrag.errors",
}

__all__ = [
    "ClipEmbeddings",
    "ClipModel",
    "ConfigError",
    "CorruptImageError",
    "EncodedImages",
    "ImageError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "MmragError",
    "ModelError",
    "ModelUnavailableError",
    "Settings",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "UnsupportedImageError",
    "__version__",
    "load_image",
]

if TYPE_CHECKING:
    from mmrag.clip import ClipModel, EncodedImages
    from mmrag.config import Settings
    from mmrag.embeddings import ClipEmbeddings
    from mmrag.errors import (
        ConfigError,
        CorruptImageError,
        ImageError,
        ImageNotFoundError,
        ImageTooLargeError,
        MmragError,
        ModelError,
        ModelUnavailableError,
        UnknownModelError,
        UnsafeCheckpointError,
        UnsupportedImageError,
    )
    from mmrag.images import load_image


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'mmrag' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
