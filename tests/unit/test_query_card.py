"""Query cards: a cached export serves query texts without loading the model, and only while it is valid."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mmrag.model.clip import ClipModel
from mmrag.model.query_card import QueryCard, card_key, card_path, weight_files
from mmrag.model.weights import resolve

TEXTS = ["a red circle", "一个红色的圆形", "", "a big blue square on the left " * 20]


@pytest.fixture
def carded(tmp_path: Path, seed_onnx_cache: Callable[[Path], Path]) -> Path:
    """A runtime dir holding the toy's export and the card its preparation wrote."""
    runtime = tmp_path / "onnx"
    seed_onnx_cache(runtime)
    ClipModel("toy", device="cpu", text_runtime="onnx", runtime_dir=runtime).prepare_text_runtime()
    return runtime


def test_preparing_writes_a_card(carded: Path) -> None:
    key = card_key("toy", None)
    assert key is not None
    data = json.loads(card_path(carded, key).read_text())
    assert data["label"] == "toy"
    assert (data["dim"], data["context_length"], data["clean"]) == (64, 32, "lower")
    assert (carded / data["onnx"]).is_file()
    files = {Path(f[0]).name for f in data["files"]}
    assert files == {"open_clip_config.json", "open_clip_model.safetensors"}


def test_a_card_serves_query_texts_without_loading_the_model(carded: Path, toy_clip: ClipModel) -> None:
    clip = ClipModel("toy", device="cpu", text_runtime="cached", runtime_dir=carded)
    vectors = clip.encode_query_texts(TEXTS)
    assert not clip.is_loaded
    assert clip.dim == 64
    assert vectors.shape == (4, 64)
    assert clip.logit_scale == pytest.approx(toy_clip.logit_scale, rel=1e-5)
    assert np.abs(vectors - toy_clip.encode_texts(TEXTS)).max() < 1e-4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert clip.text_runtime_status.startswith("onnxruntime (text-")
    assert clip.encode_query_texts([]).shape == (0, 64)


def test_torch_mode_a_gpu_or_bf16_ignore_the_card(carded: Path) -> None:
    for clip in (
        ClipModel("toy", device="cpu", text_runtime="torch", runtime_dir=carded),
        ClipModel("toy", device="cuda", text_runtime="auto", runtime_dir=carded),
        ClipModel("toy", device="cpu", precision="bf16", text_runtime="auto", runtime_dir=carded),
    ):
        assert clip._query_texts.card is None


def test_changed_weights_or_a_missing_export_void_the_card(carded: Path) -> None:
    key = card_key("toy", None)
    assert QueryCard.find(carded, key) is not None
    path = card_path(carded, key)  # type: ignore[arg-type]
    data = json.loads(path.read_text())
    data["files"][1][2] += 1  # the weights file "changed" (another modification time)
    path.write_text(json.dumps(data))
    assert QueryCard.find(carded, key) is None
    data["files"][1][2] -= 1
    path.write_text(json.dumps(data))
    assert QueryCard.find(carded, key) is not None
    (carded / data["onnx"]).unlink()
    assert QueryCard.find(carded, key) is None
    path.write_text("{not json")
    assert QueryCard.find(carded, key) is None


def test_an_unreadable_export_falls_back_to_torch_and_drops_the_card(carded: Path, toy_clip: ClipModel) -> None:
    key = card_key("toy", None)
    card = QueryCard.find(carded, key)
    assert card is not None
    size = card.onnx.stat().st_size
    stamp = card.onnx.stat()
    card.onnx.write_bytes(b"\0" * size)  # same size, garbage inside
    os.utime(card.onnx, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    clip = ClipModel("toy", device="cpu", text_runtime="cached", runtime_dir=carded)
    vectors = clip.encode_query_texts(["a red circle"])
    assert clip.is_loaded  # torch encoded it
    assert np.abs(vectors - toy_clip.encode_texts(["a red circle"])).max() < 1e-5
    assert not card_path(carded, key).exists()  # type: ignore[arg-type]


def test_keys_and_weight_files(tmp_path: Path, tiny_model_id: str) -> None:
    assert card_key("ViT-B-32", "random") is None  # random weights: nothing to cache
    assert card_key("ViT-B-32", "laion2b_s34b_b79k") != card_key("ViT-B-32", "openai")
    moved = tmp_path / "elsewhere"
    folder = Path(tiny_model_id.removeprefix("local-dir:"))
    shutil.copytree(folder, moved)
    assert card_key(f"local-dir:{moved}", None) != card_key(tiny_model_id, None)
    names = {p.name for p in weight_files(resolve(tiny_model_id, None))}
    assert names == {"open_clip_config.json", "open_clip_model.safetensors"}
