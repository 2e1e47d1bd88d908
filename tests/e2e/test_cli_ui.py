"""`mmrag ui --index FOLDER`: index first, or say that the UI will fall back to the toy demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.cli.ui import _index_first
from mmrag.config import Settings
from mmrag.factory import open_knowledge_base
from tests.support.files import make_folder


def test_index_first_syncs_the_folder(tmp_path: Path, tiny_model_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home", db=tmp_path / "db", model=tiny_model_id)
    _index_first(settings, make_folder(tmp_path / "files"))
    assert "added 5" in capsys.readouterr().out
    assert open_knowledge_base(settings).counts().images == 3


def test_index_first_without_weights_announces_the_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mmrag.model.weights.host_reachable", lambda *a, **k: False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    settings = Settings.from_env({}, home=tmp_path / "home", db=tmp_path / "db")  # the default ViT-B-32
    _index_first(settings, make_folder(tmp_path / "files"))
    err = capsys.readouterr().err
    assert "not indexing" in err
    assert "falls back to the offline toy model" in err
