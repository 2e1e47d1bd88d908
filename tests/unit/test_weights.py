"""Model choice: names, tags, hub, local folders and files, and failing fast offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from mmrag.errors import ModelUnavailableError, UnknownModelError, UnsafeCheckpointError
from mmrag.model.clip import ClipModel
from mmrag.model.weights import RANDOM, resolve
from tests.support.tiny import TINY_CFG


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub is reachable (this machine is offline anyway; this makes the test independent of that)."""
    monkeypatch.setattr("mmrag.model.weights.host_reachable", lambda *a, **k: False)


@pytest.fixture
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    return cache


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownModelError, match="ViT-B-32"):
        resolve("ViT-B-23", None)


def test_unknown_tag_lists_known_tags() -> None:
    with pytest.raises(UnknownModelError, match="laion2b_s34b_b79k"):
        resolve("ViT-B-32", "no-such-tag")


def test_name_without_default_tag_asks_for_one() -> None:
    with pytest.raises(UnknownModelError, match="--pretrained"):
        resolve("ViT-B-16", None)


def test_default_tags() -> None:
    assert resolve("ViT-B-32", RANDOM).pretrained is None
    assert resolve("ViT-B-32", RANDOM).label == "ViT-B-32/random"


def test_checkpoint_file_as_model_explains_what_to_do() -> None:
    with pytest.raises(UnknownModelError, match="--model ViT-B-32 --pretrained"):
        resolve("/models/clip.safetensors", None)


def test_uncached_tag_offline_fails_fast_with_guidance(offline: None, empty_hf_cache: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        ClipModel("ViT-B-32", "laion2b_s34b_b79k").load()
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "ViT-B-32" in message
    assert "laion2b_s34b_b79k" in message
    assert "--model toy" in message
    assert "local-dir:" in message
    assert "copy" in message


def test_really_offline_here_fails_fast(empty_hf_cache: Path) -> None:
    """No monkeypatching: the real probe against the real (blocked) network."""
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="xlm-roberta-base-ViT-B-32"):
        ClipModel("xlm-roberta-base-ViT-B-32").load()
    assert time.monotonic() - start < 15


def test_hf_hub_offline_env_is_respected(monkeypatch: pytest.MonkeyPatch, empty_hf_cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE"):
        resolve("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None)


def _fake_snapshot(cache: Path, repo: str, files: dict[str, bytes]) -> Path:
    folder = cache / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("abc123")
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return snapshot


def test_cached_tag_is_used_without_network(offline: None, empty_hf_cache: Path) -> None:
    snapshot = _fake_snapshot(
        empty_hf_cache, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", {"open_clip_model.safetensors": b"x"}
    )
    source = resolve("ViT-B-32", "laion2b_s34b_b79k")
    assert source.pretrained == str(snapshot / "open_clip_model.safetensors")
    assert source.label == "ViT-B-32/laion2b_s34b_b79k"


def test_cached_hf_hub_model_loads_as_local_folder(offline: None, empty_hf_cache: Path, tiny_model_dir: Path) -> None:
    files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir()}
    _fake_snapshot(empty_hf_cache, "someone/tiny-clip", files)
    clip = ClipModel("hf-hub:someone/tiny-clip", device="cpu")
    assert clip.encode_texts(["hello"]).shape == (1, 32)
    assert clip.label == "hf-hub:someone/tiny-clip"


def test_local_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"open_clip_config\.json"):
        resolve(f"local-dir:{tmp_path}", None)


@pytest.fixture
def tiny_arch(tmp_path: Path) -> str:
    """Register the tiny architecture under a name, as open_clip's add_model_config does for JSON configs."""
    import open_clip

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "mmrag-tiny-test.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(configs)
    return "mmrag-tiny-test"


def test_name_plus_local_safetensors_file(tiny_arch: str, tiny_model_dir: Path, tiny_clip: ClipModel) -> None:
    clip = ClipModel(tiny_arch, str(tiny_model_dir / "open_clip_model.safetensors"), device="cpu")
    # Same weights as the local-dir: model, so the same vectors (preprocess differs, text doesn't).
    np.testing.assert_allclose(clip.encode_texts(["a cat"]), tiny_clip.encode_texts(["a cat"]), atol=1e-6)


def test_plain_state_dict_pickle_loads_with_weights_only(
    tiny_arch: str, tiny_model_dir: Path, tmp_path: Path, tiny_clip: ClipModel
) -> None:
    import torch
    from safetensors.torch import load_file

    path = tmp_path / "weights.pt"
    torch.save(load_file(tiny_model_dir / "open_clip_model.safetensors"), path)
    clip = ClipModel(tiny_arch, str(path), device="cpu")
    np.testing.assert_allclose(clip.encode_texts(["a cat"]), tiny_clip.encode_texts(["a cat"]), atol=1e-6)


class _Payload:
    """Stands for arbitrary code in a malicious pickle."""


def test_pickle_needing_code_is_refused(tiny_arch: str, tmp_path: Path) -> None:
    import torch

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _Payload()}, path)
    with pytest.raises(UnsafeCheckpointError, match="safetensors"):
        ClipModel(tiny_arch, str(path), device="cpu").load()
