"""The Streamlit UI under test: its script, AppTest's timeout, and what a page shows."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tests.support.repo import UI_APP

if TYPE_CHECKING:
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
