"""mmrag: multimodal RAG over images and text with CLIP, Chroma and LangChain.

The public API is imported lazily, so ``import mmrag`` is fast and does not import torch.
"""

from __future__ import annotations

import contextlib
from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ClipEmbeddings": "mmrag.langchain.embeddings",
    "ClipModel": "mmrag.model.clip",
    "EncodedImages": "mmrag.model.clip",
    "Settings": "mmrag.config",
    "make_tools": "mmrag.langchain.tools",
    "build_agent": "mmrag.langchain.agent",
    "agent_chain": "mmrag.langchain.agent_chain",
    "answer_question": "mmrag.langchain.answer",
    "answer_chain": "mmrag.langchain.answer",
    "Answer": "mmrag.langchain.answer",
    "AnswerChain": "mmrag.langchain.answer",
    "MmragEmbeddingFunction": "mmrag.kb.embedding_function",
    "IncompatibleCollectionError": "mmrag.errors",
    "PathNotAllowedError": "mmrag.errors",
    "LLMError": "mmrag.errors",
    "LLMUnavailableError": "mmrag.errors",
    "open_knowledge_base": "mmrag.factory",
    "KnowledgeBase": "mmrag.langchain.knowledge_base",
    "SyncReport": "mmrag.kb.report",
    "MultimodalRetriever": "mmrag.langchain.retriever",
    "Searcher": "mmrag.search.searcher",
    "SearchResult": "mmrag.search.hits",
    "Hit": "mmrag.search.hits",
    "Query": "mmrag.search.query",
    "ZeroShotClassifier": "mmrag.search.zeroshot",
    "DocumentError": "mmrag.errors",
    "StoreError": "mmrag.errors",
    "ModelMismatchError": "mmrag.errors",
    "KnowledgeBaseLockedError": "mmrag.errors",
    "load_image": "mmrag.files.images",
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
    "AnswerChain",
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
    "IncompatibleCollectionError",
    "KnowledgeBase",
    "KnowledgeBaseLockedError",
    "LLMError",
    "LLMUnavailableError",
    "MmragEmbeddingFunction",
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
    "agent_chain",
    "answer_chain",
    "answer_question",
    "build_agent",
    "load_image",
    "make_tools",
    "open_knowledge_base",
]

if TYPE_CHECKING:
    from mmrag.config import Settings
    from mmrag.errors import (
        ConfigError,
        CorruptImageError,
        DocumentError,
        ImageError,
        ImageNotFoundError,
        ImageTooLargeError,
        IncompatibleCollectionError,
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
    from mmrag.factory import open_knowledge_base
    from mmrag.files.images import load_image
    from mmrag.kb.embedding_function import MmragEmbeddingFunction
    from mmrag.kb.report import SyncReport
    from mmrag.langchain.agent import build_agent
    from mmrag.langchain.agent_chain import agent_chain
    from mmrag.langchain.answer import Answer, AnswerChain, answer_chain, answer_question
    from mmrag.langchain.embeddings import ClipEmbeddings
    from mmrag.langchain.knowledge_base import KnowledgeBase
    from mmrag.langchain.retriever import MultimodalRetriever
    from mmrag.langchain.tools import make_tools
    from mmrag.model.clip import ClipModel, EncodedImages
    from mmrag.search.hits import Hit, SearchResult
    from mmrag.search.query import Query
    from mmrag.search.searcher import Searcher
    from mmrag.search.zeroshot import ZeroShotClassifier


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'mmrag' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


# --- chromadb: know mmrag's embedding function ("mmrag") once chromadb is imported ------------------------

_CHROMA_REGISTRY = "chromadb.utils.embedding_functions"


class _AfterChromaImport:
    """A one-shot import hook: when chromadb's embedding-function registry is first imported, register mmrag's
    function in it (:mod:`mmrag.kb.embedding_function`). ``import mmrag`` itself imports no chromadb."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        import sys
        from importlib.util import find_spec

        if fullname != _CHROMA_REGISTRY:
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            _register_embedding_function()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _register_embedding_function() -> None:
    import logging

    try:
        import_module("mmrag.kb.embedding_function")
    except Exception as e:  # never break chromadb's import over it
        logging.getLogger(__name__).warning("could not register mmrag's chromadb embedding function: %s", e)


def _hook_chromadb() -> None:
    import sys

    if _CHROMA_REGISTRY in sys.modules:
        _register_embedding_function()
    elif not any(isinstance(f, _AfterChromaImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterChromaImport())


_hook_chromadb()
