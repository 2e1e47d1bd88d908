"""The same knowledge base code against a real `chroma run` server on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmrag.config import Settings
from mmrag.errors import ModelMismatchError, StoreError
from mmrag.factory import open_knowledge_base
from tests.support.chroma_server import chroma_server
from tests.support.files import make_folder
from tests.support.kbs import snapshot


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


def _settings(url: str, tmp_path: Path, name: str, model: str | None) -> Settings:
    return Settings.from_env(
        {}, home=tmp_path / "home", chroma_url=url, collection=name, model=model, text_runtime="torch"
    )


def test_sync_against_a_server_matches_embedded(server_url: str, tmp_path: Path, tiny_model_id: str) -> None:
    folder = make_folder(tmp_path / "files")
    name = f"kb-{uuid.uuid4().hex[:8]}"
    remote = open_knowledge_base(_settings(server_url, tmp_path, name, tiny_model_id))
    assert remote.store.lock_path is None
    first = remote.sync(folder)
    assert first.added == 5
    assert remote.sync(folder).unchanged == 5

    embedded = open_knowledge_base(
        Settings.from_env({}, home=tmp_path / "e", model=tiny_model_id, text_runtime="torch")
    )
    embedded.sync(folder)
    assert snapshot(remote) == snapshot(embedded)

    again = open_knowledge_base(_settings(server_url, tmp_path, name, None))  # the model comes from the KB
    assert again.clip.model_name == tiny_model_id
    assert again.counts().images == 3
    with pytest.raises(ModelMismatchError):
        open_knowledge_base(_settings(server_url, tmp_path, name, "ViT-B-32")).check_model()


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="chroma run"):
        open_knowledge_base(_settings("http://127.0.0.1:9", tmp_path, "kb", "toy"))
