"""Settings read MMRAG_* variables, validate them, and name the flag in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.config import DEFAULT_MODEL, Settings
from mmrag.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path)
    assert settings.model is None
    assert settings.model_name == DEFAULT_MODEL
    assert settings.db_path == tmp_path / "kb"
    assert settings.chroma_url is None


def test_env_then_overrides() -> None:
    env = {"MMRAG_MODEL": "toy", "MMRAG_BATCH_SIZE": "8", "MMRAG_DB": "/tmp/x", "MMRAG_MAX_MEGAPIXELS": "2.5"}
    settings = Settings.from_env(env, batch_size=4, model=None)
    assert settings.model == "toy"
    assert settings.batch_size == 4
    assert settings.db == Path("/tmp/x")
    assert settings.max_megapixels == 2.5


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MMRAG_BATCH_SIZE": "many"}, "MMRAG_BATCH_SIZE"),
        ({"MMRAG_BATCH_SIZE": "0"}, "--batch-size"),
        ({"MMRAG_MAX_MEGAPIXELS": "-1"}, "--max-megapixels"),
        ({"MMRAG_DB": "/tmp/a", "MMRAG_CHROMA_URL": "http://127.0.0.1:8000"}, "--chroma-url"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)
