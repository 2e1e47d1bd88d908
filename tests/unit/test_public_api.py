"""The public API is pinned: ``mmrag.__all__``, the version and where it comes from, and what importing costs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmrag
from mmrag.cli import cli

PUBLIC = [
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


def test_all_is_pinned() -> None:
    """Adding or removing a public name is a decision: change this list and the CHANGELOG with it."""
    assert sorted(mmrag.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "__version__"])
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(mmrag, name)
    assert value is not None
    module = getattr(value, "__module__", "")
    assert module.startswith("mmrag."), f"{name} comes from {module}"


def test_the_version_is_written_once() -> None:
    """pyproject.toml reads the version from ``mmrag.__version__`` (dynamic), so the two can't drift."""
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "mmrag.__version__" }' in pyproject
    from importlib.metadata import version

    assert version("mmrag") == mmrag.__version__


def test_cli_prints_the_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"mmrag {mmrag.__version__}"
