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
    "make_tools": "mmrag.tools",
    "build_agent": "mmrag.agent",
    "answer_question": "mmrag.answer",
    "Answer": "mmrag.answer",
    "PathNotAllowedError": "mmrag.errors",
    "LLMError": "mmrag.errors",
    "LLMUnavailableError": "mmrag.errors",
    "open_knowledge_base": "mmrag.app",
    "KnowledgeBase": "mmrag.store",
    "SyncReport": "mmrag.sync",
    "MultimodalRetriever": "mmrag.retrieval",
    "Searcher": "mmrag.retrieval",
    "SearchResult": "mmrag.retrieval",
    "Hit": "mmrag.retrieval",
    "Query": "mmrag.query",
    "ZeroShotClassifier": "mmrag.zeroshot",
    "DocumentError": "mmrag.errors",
    "StoreError": "mmrag.errors",
    "ModelMismatchError": "mmrag.errors",
    "KnowledgeBaseLockedError": "mmrag.errors",
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
    "Answer",
    "ClipEmbeddings",
    "ClipModel",
    "ConfigError",
    "CorruptImageError",
    "DocumentError",
    "EncodedImages",
    "Hit",
    "ImageError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "KnowledgeBase",
    "KnowledgeBaseLockedError",
    "LLMError",
    "LLMUnavailableError",
    "MmragError",
    "ModelError",
    "ModelMismatchError",
    "ModelUnavailableError",
    "MultimodalRetriever",
    "PathNotAllowedError",
    "Query",
    "SearchResult",
    "Searcher",
    "Settings",
    "StoreError",
    "SyncReport",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "UnsupportedImageError",
    "ZeroShotClassifier",
    "__version__",
    "answer_question",
    "build_agent",
    "load_image",
    "make_tools",
    "open_knowledge_base",
]

if TYPE_CHECKING:
    from mmrag.agent import build_agent
    from mmrag.answer import Answer, answer_question
    from mmrag.app import open_knowledge_base
    from mmrag.clip import ClipModel, EncodedImages
    from mmrag.config import Settings
    from mmrag.embeddings import ClipEmbeddings
    from mmrag.errors import (
        ConfigError,
        CorruptImageError,
        DocumentError,
        ImageError,
        ImageNotFoundError,
        ImageTooLargeError,
        KnowledgeBaseLockedError,
        LLMError,
        LLMUnavailableError,
        MmragError,
        ModelError,
        ModelMismatchError,
        ModelUnavailableError,
        PathNotAllowedError,
        StoreError,
        UnknownModelError,
        UnsafeCheckpointError,
        UnsupportedImageError,
    )
    from mmrag.images import load_image
    from mmrag.query import Query
    from mmrag.retrieval import Hit, MultimodalRetriever, Searcher, SearchResult
    from mmrag.store import KnowledgeBase
    from mmrag.sync import SyncReport
    from mmrag.tools import make_tools
    from mmrag.zeroshot import ZeroShotClassifier


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'mmrag' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
