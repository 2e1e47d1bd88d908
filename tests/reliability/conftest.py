"""Fixtures of the reliability suite: the preloaded process starter (see zygote.py)."""

from __future__ import annotations

import pytest

from tests.reliability.zygote import Zygote


@pytest.fixture(scope="session")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Zygote:
    """Starts ``mmrag`` commands (and worker functions) as fresh child processes in milliseconds."""
    starter = Zygote(tmp_path_factory.mktemp("jobs"))
    starter.warm_up()
    return starter
