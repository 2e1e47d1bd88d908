"""Shared fixtures: an isolated mmrag home, a tiny random open_clip model, and the toy model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MMRAG_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="needs real CLIP weights: set MMRAG_RUN_SLOW=1 on a machine that has them")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point mmrag's data dir at tmp_path and clear the user's MMRAG_* settings."""
    for key in list(os.environ):
        if key.startswith("MMRAG_") and not key.startswith("MMRAG_TEST_"):
            monkeypatch.delenv(key)
    home = tmp_path / "mmrag-home"
    monkeypatch.setenv("MMRAG_HOME", str(home))
    # Query texts on torch: the default (auto) would export a text tower to ONNX in the background for every
    # test's fresh home. tests/test_onnx_text.py covers that runtime.
    monkeypatch.setenv("MMRAG_TEXT_RUNTIME", "torch")
    return home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised open_clip model saved as a local-dir: folder (fixed weights)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tiny-clip")
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": TINY_PREPROCESS})
    )
    torch.manual_seed(0)
    model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return folder


@pytest.fixture(scope="session")
def tiny_model_id(tiny_model_dir: Path) -> str:
    return f"local-dir:{tiny_model_dir}"


@pytest.fixture(scope="session")
def tiny_clip(tiny_model_id: str):  # type: ignore[no-untyped-def]
    from mmrag.model.clip import ClipModel

    return ClipModel(tiny_model_id, device="cpu", batch_size=4, text_runtime="torch")


@pytest.fixture(scope="session")
def toy_clip():  # type: ignore[no-untyped-def]
    from mmrag.model.clip import ClipModel

    return ClipModel("toy", device="cpu", text_runtime="torch")
