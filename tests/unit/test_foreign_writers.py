"""Other writers on the same store (langchain-chroma on mmrag's collections) and adopting collections built by
other tools: sync converges, foreign records are left alone and come back well-formed, bad adoptions are
refused. Real embedded Chroma, real langchain-chroma, the toy model."""

from __future__ import annotations

import shutil
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma

from mmrag.errors import IncompatibleCollectionError
from mmrag.kb.records import IMAGE, OWNER, OWNER_KEY, TEXT
from mmrag.langchain.embeddings import ClipEmbeddings
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from tests.support.kbs import kb_folder, open_kb


@pytest.fixture
def kb_and_folder(tmp_path: Path, tools_kb: KnowledgeBase) -> tuple[KnowledgeBase, Path]:
    folder = tmp_path / "files"
    shutil.copytree(kb_folder(tools_kb), folder)
    kb = open_kb(tmp_path / "kb", "toy")
    assert kb.sync(folder).added == 13
    return kb, folder


def test_mmrag_marks_its_records(kb_and_folder: tuple[KnowledgeBase, Path]) -> None:
    kb, _ = kb_and_folder
    for modality in (IMAGE, TEXT):
        metas = kb.store.metadatas(modality).values()
        assert metas
        assert all(m[OWNER_KEY] == OWNER for m in metas)
    assert kb.foreign_ids() == {IMAGE: [], TEXT: []}


def test_sync_converges_and_leaves_other_writers_records(kb_and_folder: tuple[KnowledgeBase, Path]) -> None:
    kb, folder = kb_and_folder
    stores = kb.as_vectorstores()  # langchain-chroma on mmrag's own collections: another writer
    red = folder / "images" / "red_circle_01.png"
    [image_id] = stores[IMAGE].add_images([str(red)], metadatas=[{"source": str(red)}])
    note = folder / "notes" / "red_circle.md"
    [text_id] = stores[TEXT].add_texts(["someone else's summary of the red circle"], metadatas=[{"source": str(note)}])

    for _ in range(3):  # before: updated=1 on every run, and the foreign text record deleted on the first
        report = kb.sync(folder)
        assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 13)
    assert kb.foreign_ids() == {IMAGE: [image_id], TEXT: [text_id]}
    assert kb.store.get(TEXT, [text_id])[0].document.startswith("someone else's")

    assert kb.remove([folder / "notes"]) == 5  # mmrag's five notes; the other writer's record stays
    assert kb.foreign_ids()[TEXT] == [text_id]
    assert kb.remove_ids([text_id]) == 1  # removed explicitly, by id


def test_foreign_records_come_back_well_formed(kb_and_folder: tuple[KnowledgeBase, Path]) -> None:
    kb, folder = kb_and_folder
    stores = kb.as_vectorstores()
    red = folder / "images" / "red_circle_02.png"
    [image_id] = stores[IMAGE].add_images([str(red)])  # no metadata at all: raw base64 as its document
    [text_id] = stores[TEXT].add_texts(["a red circle drawn by hand"])
    docs = {d.id: d for d in kb.as_retriever(k=20, threshold=0).invoke("a red circle")}
    image, text = docs[image_id], docs[text_id]
    assert image.metadata["modality"] == IMAGE
    assert image.metadata["path"] == ""
    assert image.metadata["thumbnail"].startswith("data:image/")  # a data URI, never raw base64
    assert not any(isinstance(v, str) and v.startswith("iVBOR") for v in image.metadata.values())
    assert image.page_content == f"[image: {image_id}]"
    assert image.metadata["citation"] == f"[image {image_id}] {image_id}"
    assert text.metadata["modality"] == TEXT
    assert text.page_content == "a red circle drawn by hand"


def test_a_from_texts_collection_is_refused_on_open(tmp_path: Path, toy_clip: ClipModel) -> None:
    client = chromadb.PersistentClient(str(tmp_path / "kb"), settings=ChromaSettings(anonymized_telemetry=False))
    Chroma.from_texts(
        ["a red circle", "a blue star"], ClipEmbeddings(clip=toy_clip), client=client, collection_name="mmrag_texts"
    )
    with pytest.raises(IncompatibleCollectionError, match=r"mmrag_texts .* 'l2' space, not cosine.*MMRAG_COLLECTION"):
        open_kb(tmp_path / "kb", "toy")


def test_a_cosine_collection_without_a_model_record_is_refused(tmp_path: Path, toy_clip: ClipModel) -> None:
    client = chromadb.PersistentClient(str(tmp_path / "kb"), settings=ChromaSettings(anonymized_telemetry=False))
    Chroma.from_texts(
        ["a red circle"],
        ClipEmbeddings(clip=toy_clip),
        client=client,
        collection_name="mmrag_texts",
        collection_metadata={"hnsw:space": "cosine"},
    )
    with pytest.raises(IncompatibleCollectionError, match="no mmrag model record"):
        open_kb(tmp_path / "kb", "toy")


def test_an_empty_cosine_collection_is_adopted(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(str(tmp_path / "kb"), settings=ChromaSettings(anonymized_telemetry=False))
    client.create_collection("mmrag_texts", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "note.md").write_text("a green square\n")
    kb = open_kb(tmp_path / "kb", "toy")
    assert kb.sync(tmp_path / "files").added == 1
    assert kb.model_record is not None
    assert kb.model_record.label == "toy"


def test_a_collection_with_another_embedding_function_keeps_it(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(str(tmp_path / "kb"), settings=ChromaSettings(anonymized_telemetry=False))
    client.create_collection("mmrag_texts", metadata={"hnsw:space": "cosine"})  # chromadb's "default" function
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "note.md").write_text("a green square\n")
    kb = open_kb(tmp_path / "kb", "toy")
    assert kb.sync(tmp_path / "files").added == 1
    assert kb.as_retriever(threshold=0).invoke("a green square")[0].metadata["source"].endswith("note.md")
