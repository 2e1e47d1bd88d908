"""Paths in the repository the tests read: the README, the guides, the Streamlit script."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))
UI_APP = ROOT / "ui" / "app.py"
