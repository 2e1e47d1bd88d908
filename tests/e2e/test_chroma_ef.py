"""Plain chromadb queries an mmrag knowledge base by text and by image, on a PersistentClient and on a
`chroma run` server, through mmrag's registered embedding function (the toy model)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings
from chromadb.utils.data_loaders import ImageLoader
from chromadb.utils.embedding_functions import known_embedding_functions
from PIL import Image

from mmrag.config import Settings
from mmrag.factory import open_knowledge_base
from mmrag.kb.embedding_function import MmragEmbeddingFunction
from mmrag.kb.records import TEXT
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.chroma_server import chroma_server
from tests.support.files import shape_png
from tests.support.kbs import kb_folder
from tests.support.repo import ROOT


def chroma_settings() -> ChromaSettings:
    """A fresh settings object per client: chromadb writes into the one it is given."""
    return ChromaSettings(anonymized_telemetry=False)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-ef-server")) as url:
        yield url


def _names(result: dict[str, object]) -> list[str]:
    metadatas = result["metadatas"]
    assert isinstance(metadatas, list)
    return [Path(str(m["source"])).stem for m in metadatas[0]]


def _query_both_ways(images: chromadb.Collection, texts: chromadb.Collection, red_png: Path) -> None:
    assert set(_names(images.query(query_texts=["a red circle"], n_results=2))) == {"red_circle_01", "red_circle_02"}
    assert _names(texts.query(query_texts=["a blue star"], n_results=1)) == ["blue_star"]
    by_uri = images.query(query_uris=[str(red_png)], n_results=2)  # the data loader reads the file
    assert set(_names(by_uri)) == {"red_circle_01", "red_circle_02"}
    array = np.asarray(Image.open(io.BytesIO(shape_png("blue-star", seed=3))).convert("RGB"))
    [name] = _names(images.query(query_images=[array], n_results=1))
    assert name.startswith("blue_star_")


def test_the_function_is_registered_and_stored_with_the_collections(tools_kb: KnowledgeBase) -> None:
    assert known_embedding_functions["mmrag"] is MmragEmbeddingFunction
    for modality in ("image", "text"):
        config = tools_kb.store.collection(modality).configuration_json["embedding_function"]
        assert config == {"type": "known", "name": "mmrag", "config": {"model": "toy", "pretrained": ""}}


def test_plain_persistent_client_queries_by_text_uri_and_array(tools_kb: KnowledgeBase) -> None:
    client = chromadb.PersistentClient(path=tools_kb.location, settings=chroma_settings())
    images = client.get_collection("mmrag_images", data_loader=ImageLoader())
    texts = client.get_collection("mmrag_texts")
    _query_both_ways(images, texts, kb_folder(tools_kb) / "images" / "red_circle_01.png")


def test_image_vectors_equal_mmrags_own(tools_kb: KnowledgeBase) -> None:
    """chromadb's OpenCLIP function leaves the model in training mode (cosine 0.278 with mmrag's); this one
    gives mmrag's vectors."""
    png = kb_folder(tools_kb) / "images" / "blue_star_01.png"
    ef = MmragEmbeddingFunction.build_from_config({"model": "toy", "pretrained": ""})
    array = np.asarray(Image.open(png).convert("RGB"))
    from_array, from_uri = ef([array, png.as_uri()])
    [id_] = tools_kb.store.metadatas("image", {"source": str(png)})
    mine = np.asarray(tools_kb.store.get("image", [id_], embeddings=True)[0].embedding)
    assert float(from_uri @ mine) > 0.999
    assert float(from_array @ mine) > 0.99
    text_doc, text_query = ef(["a blue star"])[0], ef.embed_query(["a blue star"])[0]
    assert float(text_doc @ text_query) > 0.999


def test_plain_http_client_queries_a_served_kb(server_url: str, tmp_path: Path, tools_kb: KnowledgeBase) -> None:
    name = f"ef-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {}, home=tmp_path / "home", chroma_url=server_url, collection=name, model="toy", text_runtime="torch"
    )
    remote = open_knowledge_base(settings)
    assert remote.sync(kb_folder(tools_kb)).added == 13
    host, port = server_url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port), settings=chroma_settings())
    images = client.get_collection(f"{name}_images", data_loader=ImageLoader())
    texts = client.get_collection(f"{name}_texts")
    assert texts.configuration_json["embedding_function"]["name"] == "mmrag"
    _query_both_ways(images, texts, kb_folder(tools_kb) / "images" / "red_circle_01.png")
    remote.drop()


def test_a_collection_written_before_the_function_gets_it_on_the_next_write(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path / "kb"), settings=chroma_settings())
    old = client.create_collection(
        "mmrag_texts",
        metadata={"hnsw:space": "cosine", "mmrag_model": "toy", "mmrag_pretrained": "", "mmrag_label": "toy"}
        | {"mmrag_dim": 64, "mmrag_modality": TEXT},
        embedding_function=None,
    )
    assert old.configuration_json["embedding_function"] is None
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "note.md").write_text("a green square\n")
    kb = open_knowledge_base(Settings.from_env({}, home=tmp_path / "home", db=tmp_path / "kb", text_runtime="torch"))
    kb.sync(tmp_path / "files")
    config = client.get_collection("mmrag_texts").configuration_json["embedding_function"]
    assert config["name"] == "mmrag"


def test_import_mmrag_before_chromadb_registers_it(tools_kb: KnowledgeBase) -> None:
    """A fresh process: `import mmrag` (which imports no chromadb), then plain chromadb, and a text query."""
    script = textwrap.dedent(
        f"""
        import sys
        import mmrag
        assert "chromadb" not in sys.modules
        import chromadb
        from chromadb.config import Settings
        client = chromadb.PersistentClient(path={tools_kb.location!r}, settings=Settings(anonymized_telemetry=False))
        hits = client.get_collection("mmrag_texts").query(query_texts=["a red circle"], n_results=1)
        print(hits["metadatas"][0][0]["source"])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMRAG_TEXT_RUNTIME": "torch"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("red_circle.md")
