"""Real ONNX exports of the query text tower (each runs the library's export child, seconds): exported vectors
equal torch's, each weights get their own export, an unreadable cache is exported again, and processes that
exit while preparing one exit cleanly. The rest of the ONNX runtime is tested in tests/unit/test_onnx_text.py,
on the session's one toy export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mmrag.model.clip import ClipModel
from tests.support.onnx import QUERY_TEXTS as TEXTS
from tests.support.onnx import ExitRuns


@pytest.mark.parametrize("model", ["toy", "tiny"])
def test_onnx_vectors_equal_torch_vectors(model: str, tiny_model_id: str, onnx_dir: Path) -> None:
    clip = ClipModel(
        "toy" if model == "toy" else tiny_model_id, device="cpu", text_runtime="onnx", runtime_dir=onnx_dir
    )
    fast = clip.encode_query_texts(TEXTS)  # mixed lengths in one batch, one longer than the context
    assert clip.text_runtime_status.startswith("onnxruntime")
    reference = clip.encode_texts(TEXTS)
    assert fast.dtype == np.float32
    assert fast.shape == reference.shape
    np.testing.assert_allclose(fast, reference, atol=1e-5)
    for text, row in zip(TEXTS, reference, strict=True):  # one by one, as queries come
        np.testing.assert_allclose(clip.encode_query_texts([text])[0], row, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


def test_other_weights_get_their_own_export(toy_onnx: ClipModel, onnx_dir: Path, tiny_model_id: str) -> None:
    tiny = ClipModel(tiny_model_id, device="cpu", text_runtime="onnx", runtime_dir=onnx_dir)
    assert tiny.prepare_text_runtime() != toy_onnx.text_runtime_status
    assert len(list(onnx_dir.glob("text-*.onnx"))) == 2


def test_an_unreadable_cache_file_is_exported_again(seed_onnx_cache: Callable[[Path], Path], tmp_path: Path) -> None:
    path = seed_onnx_cache(tmp_path)
    path.write_bytes(b"not an onnx model")
    clip = ClipModel("toy", device="cpu", text_runtime="onnx", runtime_dir=tmp_path)
    assert clip.prepare_text_runtime() == f"onnxruntime ({path.name})"
    assert path.stat().st_size > 100_000
    np.testing.assert_allclose(clip.encode_query_texts(TEXTS), clip.encode_texts(TEXTS), atol=1e-5)


def test_a_process_that_exits_while_preparing_exits_cleanly(exits_while_preparing: ExitRuns) -> None:
    """Real processes (tests/support/onnx.py, started as the session starts): three exit at once, while hashing
    the weights or writing the export's job; one exits while its detached child exports."""
    for done in exits_while_preparing.now:
        assert done.returncode == 0, done.stderr  # C++ work in a thread at exit used to abort the process
        assert done.stdout.startswith("torch (preparing")
    done = exits_while_preparing.waited
    assert done.returncode == 0, done.stderr  # exit while the child exports
    (export,) = exits_while_preparing.exports  # the detached child finished the export after its parent went
    clip = ClipModel("toy", device="cpu", text_runtime="onnx", runtime_dir=exits_while_preparing.folder)
    assert clip.prepare_text_runtime() == f"onnxruntime ({export.name})"
