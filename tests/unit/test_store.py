"""The knowledge base as a store: one model per KB, batch limits, the write lock, LangChain vector stores.

With other, real processes (writers, a kill -9, plain chromadb): tests/e2e/test_store_processes.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from mmrag.config import Settings
from mmrag.errors import ModelMismatchError
from mmrag.factory import open_knowledge_base
from mmrag.kb.records import IMAGE, TEXT
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.files import make_folder, make_image
from tests.support.kbs import open_kb


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "files")


def test_kb_records_its_model_and_later_opens_use_it(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    open_kb(tmp_path / "db", tiny_model_id).sync(folder)
    reopened = open_kb(tmp_path / "db", None)  # no model named: the KB's own
    assert reopened.clip.model_name == tiny_model_id
    record = reopened.model_record
    assert record is not None
    assert (record.label, record.dim) == (tiny_model_id, 32)
    assert reopened.counts().images == 3


def test_other_model_is_refused_with_a_clear_message(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    open_kb(tmp_path / "db", tiny_model_id).sync(folder)
    with pytest.raises(ModelMismatchError) as info:
        open_kb(tmp_path / "db", "toy")
    assert tiny_model_id in str(info.value)
    assert "--rebuild" in str(info.value)


def test_rebuild_switches_models_explicitly(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    open_kb(tmp_path / "db", tiny_model_id).sync(folder)
    settings = Settings.from_env({}, home=tmp_path / "home", db=tmp_path / "db", model="toy")
    kb = open_knowledge_base(settings, rebuild=True)
    assert kb.counts().images == 0
    kb.sync(folder)
    record = kb.model_record
    assert record is not None
    assert record.label == "toy"
    assert kb.counts().images == 3


def test_writes_are_split_under_the_clients_batch_limit(
    tmp_path: Path, folder: Path, tiny_model_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3, 12):
        make_image(folder / "images" / f"img{i}.png", seed=i)
    kb = open_kb(tmp_path / "db", tiny_model_id)
    monkeypatch.setattr(kb.store.client, "get_max_batch_size", lambda: 4)
    sizes: list[int] = []
    original = kb.store.collection(IMAGE).upsert

    def spy(**kwargs: object) -> None:
        sizes.append(len(kwargs["ids"]))  # type: ignore[arg-type]
        original(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(kb.store.collection(IMAGE), "upsert", spy)
    report = kb.sync(folder)
    assert report.added == 14
    assert kb.counts().images == 12
    assert max(sizes) <= 4
    assert sum(sizes) == 12


def test_real_chroma_batch_limit_overflow(tmp_path: Path, tiny_model_id: str) -> None:
    """More chunks than Chroma accepts in one call (its real limit), from one document."""
    kb = open_kb(tmp_path / "db", tiny_model_id)
    limit = kb.store.client.get_max_batch_size()
    # Paragraphs of ~12 tokens: two don't fit in one chunk of the tiny model's 22, so one chunk each.
    paragraphs = [" ".join([f"alpha{i}"] * 4) for i in range(limit + 100)]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "long.txt").write_text("\n\n".join(paragraphs))
    with pytest.raises(Exception, match=r"(?i)batch"):  # the test can fail: Chroma does refuse
        kb.store.collection(TEXT).upsert(
            ids=[str(i) for i in range(limit + 1)], embeddings=np.zeros((limit + 1, 32), dtype=np.float32)
        )
    report = kb.sync(tmp_path / "docs")
    assert report.skipped == []
    assert kb.counts().text_chunks == report.embedded_chunks > limit


def test_vectorstores_for_langchain(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    from langchain_chroma import Chroma

    kb = open_kb(tmp_path / "db", tiny_model_id)
    kb.sync(folder)
    stores = kb.as_vectorstores()
    assert set(stores) == {"image", "text"}
    assert all(isinstance(s, Chroma) for s in stores.values())
    hits = stores["text"].similarity_search("Cats are small carnivorous mammals.", k=1)
    assert "Cats" in hits[0].page_content
    assert hits[0].metadata["modality"] == "text"


def test_remove_by_path_and_id(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    kb = open_kb(tmp_path / "db", tiny_model_id)
    kb.sync(folder)
    assert kb.remove([folder / "notes"]) >= 2
    assert kb.counts().text_sources == 0
    some_id = next(iter(kb.store.metadatas(IMAGE)))
    assert kb.remove_ids([some_id, "no-such-id"]) == 1
    assert kb.counts().images == 2
    other = next(iter(kb.store.metadatas(IMAGE)))
    removed, missing = kb.remove_each([folder / "notes", tmp_path / "nowhere"], [other, "no-such-id"])
    assert (removed, missing) == (1, [str(folder / "notes"), str(tmp_path / "nowhere"), "no-such-id"])
    assert kb.counts().images == 1


def test_reading_an_empty_kb_records_no_model(tmp_path: Path, tiny_model_id: str) -> None:
    kb = open_kb(tmp_path / "db", tiny_model_id)
    assert kb.counts().images == 0
    assert kb.model_record is None
    assert isinstance(open_kb(tmp_path / "db", "toy"), KnowledgeBase)  # still free to pick any model


def test_lock_released_after_sync(tmp_path: Path, folder: Path, tiny_model_id: str) -> None:
    kb = open_kb(tmp_path / "db", tiny_model_id)
    kb.sync(folder)
    start = time.monotonic()
    kb.store.lock_timeout = 0.1
    kb.sync(folder)
    assert time.monotonic() - start < 10
