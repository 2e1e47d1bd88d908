"""Fixtures for the end-to-end tests: the CLI's demo home, built once by ``mmrag demo`` itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli


@pytest.fixture(scope="session")
def cli_demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mmrag home where ``mmrag demo`` (in-process) built the offline demo: ``<home>/demo/kb``. Read-only."""
    home = tmp_path_factory.mktemp("cli-demo-home")
    assert run_cli("demo", "--json", home=home).json()["added"] == 73
    return home


@pytest.fixture(scope="session")
def cli_demo_db(cli_demo_home: Path) -> str:
    return str(cli_demo_home / "demo" / "kb")
