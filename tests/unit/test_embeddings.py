"""ClipEmbeddings: LangChain's standard suites, embed_image, and langchain_chroma.Chroma.add_images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from mmrag import ClipEmbeddings
from mmrag.errors import ConfigError, ImageError
from mmrag.model.clip import ClipModel


class TestClipEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[ClipEmbeddings]:
        return ClipEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_name": "toy"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"MMRAG_MODEL": "toy", "MMRAG_BATCH_SIZE": "7"}, {}, {"model_name": "toy"}


class TestClipEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[ClipEmbeddings]:
        return ClipEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_name": "toy", "device": "cpu"}


def test_settings_come_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_MODEL", "toy")
    monkeypatch.setenv("MMRAG_BATCH_SIZE", "3")
    embeddings = ClipEmbeddings()
    assert embeddings.model_name == "toy"
    assert embeddings.clip.batch_size == 3
    assert not embeddings.clip.is_loaded


def test_shared_clip_model_is_used(tiny_clip: ClipModel) -> None:
    embeddings = ClipEmbeddings(clip=tiny_clip)
    assert embeddings.clip is tiny_clip


def _draw(tmp_path: Path, n: int) -> list[str]:
    from random import Random

    from mmrag.toy.shapes import CLASSES, draw

    paths = []
    for i in range(n):
        path = tmp_path / f"shape{i}.png"
        draw(CLASSES[i % len(CLASSES)], Random(i), size=96).save(path)
        paths.append(str(path))
    return paths


def test_embed_image_returns_plain_floats_in_batches(tiny_clip: ClipModel, tmp_path: Path) -> None:
    embeddings = ClipEmbeddings(clip=tiny_clip)  # batch size 4
    paths = _draw(tmp_path, 9)
    vectors = embeddings.embed_image(paths)
    assert len(vectors) == 9
    assert all(type(x) is float for v in vectors for x in v)
    np.testing.assert_allclose(vectors, tiny_clip.encode_images(paths), atol=1e-6)


def test_embed_image_raises_naming_bad_file(tiny_clip: ClipModel, tmp_path: Path) -> None:
    bad = tmp_path / "fake.png"
    bad.write_text("hello")
    with pytest.raises(ImageError, match=r"fake\.png"):
        ClipEmbeddings(clip=tiny_clip).embed_image([*_draw(tmp_path, 2), str(bad)])


def test_chroma_add_images_uses_embed_image(tmp_path: Path) -> None:
    import chromadb
    from langchain_chroma import Chroma

    embeddings = ClipEmbeddings(model_name="toy", device="cpu")
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    store = Chroma("shapes", embedding_function=embeddings, client=client)
    paths = _draw(tmp_path, 24)
    ids = store.add_images(paths, metadatas=[{"i": i} for i in range(24)])
    assert len(ids) == 24
    hits = store.similarity_search_by_vector(embeddings.embed_query("a red circle"), k=3)
    assert hits[0].metadata["i"] % 24 == 0  # CLASSES[0] is the red circle


def test_image_and_text_of_one_class_are_close(toy_clip: ClipModel) -> None:
    from random import Random

    from mmrag.toy.shapes import CLASSES, draw

    embeddings = ClipEmbeddings(clip=toy_clip)
    images = [draw(c, Random(7), size=64) for c in CLASSES]
    image_vecs = np.array(embeddings.embed_images(images))
    text_vecs = np.array(embeddings.embed_documents([c.caption_en for c in CLASSES]))
    best_text = (image_vecs @ text_vecs.T).argmax(axis=1)
    assert (best_text == np.arange(len(CLASSES))).mean() >= 0.9


def test_checkpoint_is_an_alias_of_pretrained(tmp_path: Path) -> None:
    weights = tmp_path / "weights.safetensors"
    embeddings = ClipEmbeddings(model_name="ViT-B-32", checkpoint="laion2b_s34b_b79k")
    assert (embeddings.pretrained, embeddings.checkpoint) == ("laion2b_s34b_b79k", "laion2b_s34b_b79k")
    assert not embeddings.clip.is_loaded
    assert ClipEmbeddings(model_name="ViT-B-32", pretrained=str(weights), checkpoint=str(weights)).pretrained == str(
        weights
    )
    with pytest.raises(ConfigError, match="not both"):
        ClipEmbeddings(model_name="ViT-B-32", pretrained="openai", checkpoint="laion2b_s34b_b79k")
