"""LangChain Documents a user already has, as first-class mmrag records: texts from loaders and splitters,
images by path, bytes or base64; stable ids; LangChain's indexing API. Real embedded Chroma, the toy model."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_text_splitters import RecursiveCharacterTextSplitter

from mmrag.errors import ConfigError
from mmrag.kb.records import IMAGE, OWNER, OWNER_KEY, TEXT
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from tests.support.files import shape_png
from tests.support.kbs import open_kb


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    return open_kb(tmp_path / "kb", "toy")


def _docs(tmp_path: Path) -> list[Document]:
    png = tmp_path / "red.png"
    png.write_bytes(shape_png("red-circle"))
    star = base64.b64encode(shape_png("blue-star")).decode()
    notes = "A red circle is round.\n\nA blue star has five points.\n\nA green square has four sides."
    splitter = RecursiveCharacterTextSplitter(chunk_size=40, chunk_overlap=0, add_start_index=True)
    texts = splitter.create_documents([notes], metadatas=[{"source": "notes/shapes.md", "page": 2}])
    return [
        *texts,
        Document(page_content="a red circle", metadata={"image_path": str(png), "source": str(png)}),
        Document(page_content="a blue star", metadata={"image_bytes": shape_png("blue-star"), "source": "star.png"}),
        Document(page_content=star, metadata={"source": "cookbook-star"}),  # the cookbook's shape: base64 content
    ]


def test_documents_become_first_class_records(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    report = kb.add_documents(docs)
    assert (report.added, report.unchanged, report.skipped) == (len(docs), 0, [])
    assert None not in report.ids
    texts = kb.store.get(TEXT, report.ids[:3])
    assert [r.metadata["start_index"] for r in texts] == [d.metadata["start_index"] for d in docs[:3]]
    for record in texts:
        meta = record.metadata
        assert (meta["modality"], meta["source"], meta["page"], meta[OWNER_KEY]) == (TEXT, "notes/shapes.md", 2, OWNER)
        assert meta["start"] == meta["start_index"]
    images = kb.store.get(IMAGE, report.ids[3:])
    assert len(images) == 3
    for record in images:
        assert record.metadata["modality"] == IMAGE
        assert record.document.startswith("data:image/jpeg;base64,")  # the thumbnail
        assert record.metadata["width"] == 128
        assert "image_bytes" not in record.metadata
    assert {r.metadata["caption"] for r in images} == {"a red circle", "a blue star", ""}

    top = kb.as_retriever(k=2, modality="image", threshold=0).invoke("a blue star")
    assert {d.metadata["source"] for d in top} == {"star.png", "cookbook-star"}
    assert top[0].metadata["thumbnail"].startswith("data:image/jpeg")


def test_a_second_add_is_a_no_op_and_ids_are_stable(kb: KnowledgeBase, tmp_path: Path) -> None:
    docs = _docs(tmp_path)
    first = kb.add_documents(docs)
    again = kb.add_documents(_docs(tmp_path))
    assert again.ids == first.ids
    assert (again.added, again.unchanged) == (0, len(docs))
    given = kb.add_documents([Document(id="my-note", page_content="a yellow triangle")])
    assert given.ids == ["my-note"]
    assert kb.add_documents([Document(page_content="x")], ids=["chosen"]).ids == ["chosen"]
    with pytest.raises(ConfigError, match="one id per document"):
        kb.add_documents(docs, ids=["a"])


def test_a_bad_image_is_skipped_and_its_neighbours_are_added(kb: KnowledgeBase) -> None:
    report = kb.add_documents(
        [
            Document(page_content="good", metadata={"image_bytes": shape_png("red-circle"), "source": "good"}),
            Document(page_content="bad", metadata={"image_bytes": b"not an image", "source": "bad.png"}),
            Document(page_content="   ", metadata={"source": "empty.md"}),
            Document(page_content="a note", metadata={"source": "n.md"}),
        ]
    )
    assert report.added == 2
    assert report.ids[1] is None
    assert report.ids[2] is None
    assert [s.source for s in report.skipped] == ["empty.md", "bad.png"]


def test_folder_sync_leaves_document_records_alone(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "note.md").write_text("a purple circle\n")
    kb.add_documents([Document(page_content="summary", metadata={"source": str(folder / "note.md")})])
    kb.add_documents([Document(page_content="elsewhere", metadata={"source": str(folder / "gone.md")})])
    for _ in range(2):
        report = kb.sync(folder)
        assert (report.updated, report.removed) == (0, 0)
    assert kb.counts().text_chunks == 3


def test_from_documents(toy_clip: ClipModel, tmp_path: Path) -> None:
    kb = KnowledgeBase.from_documents(_docs(tmp_path), toy_clip, name="from-docs")
    assert kb.counts().images == 3
    assert kb.as_retriever(k=1, modality="image", threshold=0).invoke("a red circle")[0].metadata["caption"] == (
        "a red circle"
    )


def test_langchains_indexing_api(kb: KnowledgeBase, tmp_path: Path) -> None:
    manager = InMemoryRecordManager("mmrag/test")
    manager.create_schema()
    store = kb.as_vectorstore()
    docs = _docs(tmp_path)
    uri = "data:image/png;base64," + base64.b64encode(shape_png("blue-star")).decode()
    docs[4] = Document(page_content="a blue star", metadata={"image": uri, "source": "star.png"})  # JSON-able
    first = index(docs, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256")
    assert (first["num_added"], first["num_skipped"]) == (len(docs), 0)
    again = index(docs, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256")
    assert (again["num_added"], again["num_skipped"], again["num_deleted"]) == (0, len(docs), 0)
    changed = [Document(page_content="A red circle is red.", metadata={"source": "notes/shapes.md"})]
    third = index(changed, manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256")
    assert (third["num_added"], third["num_deleted"]) == (1, 3)  # the three old chunks of notes/shapes.md
    assert kb.counts().text_chunks == 1
    assert store.get_by_ids([store.similarity_search("a red circle", k=1)[0].id or ""])


def test_the_same_ids_for_the_same_content_anywhere(tmp_path: Path) -> None:
    one = open_kb(tmp_path / "a", "toy").add_documents([Document(page_content="a red circle")])
    two = open_kb(tmp_path / "b", "toy").add_documents([Document(page_content="a red circle")])
    assert one.ids == two.ids
    assert str(one.ids[0]).startswith("doc-")


def test_an_image_file_that_changed_is_embedded_again(kb: KnowledgeBase, tmp_path: Path) -> None:
    png = tmp_path / "shape.png"
    png.write_bytes(shape_png("red-circle"))
    doc = Document(page_content="a shape", metadata={"image_path": str(png)})
    [first] = kb.add_documents([doc]).ids
    png.write_bytes(shape_png("blue-star"))
    again = kb.add_documents([doc])
    assert again.added == 1
    assert again.ids != [first]
    assert kb.as_retriever(k=1, modality="image", threshold=0).invoke("a blue star")[0].id == again.ids[0]
