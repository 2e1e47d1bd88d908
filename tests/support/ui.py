"""The Streamlit UI under test: its script, AppTest's timeout, and what a page shows."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tests.support.repo import UI_APP

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    from streamlit.testing.v1 import AppTest

APP = str(UI_APP)
TIMEOUT = 60

# Read as the tests are collected: by the time a test runs, its isolated environment has dropped MMRAG_*.
REQUIRE_BROWSER = os.environ.get("MMRAG_REQUIRE_BROWSER") == "1"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def texts(at: AppTest) -> str:
    """The page's markdown and captions, one per line."""
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption])


def started_app(db: Path, monkeypatch: pytest.MonkeyPatch, model: str = "toy") -> AppTest:
    """The page, run once on the knowledge base at ``db`` with ``model`` (through the environment, as
    ``mmrag ui`` passes them), with no exception."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MMRAG_DB", str(db))
    monkeypatch.setenv("MMRAG_MODEL", model)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at
