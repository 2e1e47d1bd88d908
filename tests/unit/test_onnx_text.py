"""Query texts on ONNX Runtime: the exported text tower must give torch's vectors, be cached, and fail safe.

These use the session's one toy export (``toy_onnx``); tests that make exports of their own are in
tests/e2e/test_onnx_export.py.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import mmrag.model.onnx_text
from mmrag.config import Settings
from mmrag.errors import ConfigError, TextRuntimeError
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from tests.support.onnx import QUERY_TEXTS as TEXTS


def _export_name(clip: ClipModel) -> str:
    """The file name in a status such as ``onnxruntime (text-….onnx)``."""
    return clip.text_runtime_status.removeprefix("onnxruntime (").removesuffix(")")


def _cached_copy(toy: ClipModel, onnx_dir: Path, target: Path) -> Path:
    """Seed ``target`` with the toy model's export, so a test doesn't pay for another one."""
    target.mkdir(parents=True, exist_ok=True)
    copy = target / _export_name(toy)
    shutil.copyfile(onnx_dir / copy.name, copy)
    return copy


def test_export_is_cached_and_reused(toy_onnx: ClipModel, onnx_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _export_name(toy_onnx)
    assert name.startswith("text-")
    assert (onnx_dir / name).is_file()
    assert not list(onnx_dir.glob(".*partial"))

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(mmrag.model.onnx_text, "run_job", no_export)
    again = ClipModel("toy", device="cpu", text_runtime="onnx", runtime_dir=onnx_dir)
    assert again.prepare_text_runtime() == f"onnxruntime ({name})"
    np.testing.assert_allclose(again.encode_query_texts(["一只猫"]), toy_onnx.encode_texts(["一只猫"]), atol=1e-5)


def test_auto_prepares_in_the_background_then_switches(toy_onnx: ClipModel, onnx_dir: Path, tmp_path: Path) -> None:
    _cached_copy(toy_onnx, onnx_dir, tmp_path)
    clip = ClipModel("toy", device="cpu", text_runtime="auto", runtime_dir=tmp_path)
    reference = clip.encode_texts(TEXTS)
    first = clip.encode_query_texts(TEXTS)  # starts the export and answers on torch meanwhile
    np.testing.assert_allclose(first, reference, atol=1e-5)
    assert clip.text_runtime_status.startswith(("torch (preparing", "onnxruntime"))
    assert clip.prepare_text_runtime().startswith("onnxruntime")  # waits for the background export
    assert len(list(tmp_path.glob("text-*.onnx"))) == 1
    np.testing.assert_allclose(clip.encode_query_texts(TEXTS), reference, atol=1e-5)


def test_a_failed_export_leaves_queries_on_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TextRuntimeError("the exporter broke")

    monkeypatch.setattr(mmrag.model.onnx_text, "run_job", broken)
    clip = ClipModel("toy", device="cpu", text_runtime="auto", runtime_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="mmrag.model.onnx_text"):
        first = clip.encode_query_texts(["a red circle"])
        with pytest.raises(TextRuntimeError, match="the exporter broke"):
            clip.prepare_text_runtime()
    assert "query texts stay on torch: the exporter broke" in caplog.text
    assert clip.text_runtime_status == "torch (onnxruntime unavailable: the exporter broke)"
    np.testing.assert_allclose(clip.encode_query_texts(["a red circle"]), first, atol=1e-6)
    assert not list(tmp_path.glob("*.onnx"))


def test_an_export_that_disagrees_with_torch_is_refused(
    toy_onnx: ClipModel, onnx_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_call = mmrag.model.onnx_text.OnnxTextTower.__call__

    def skewed(self: mmrag.model.onnx_text.OnnxTextTower, tokens: np.ndarray) -> np.ndarray:
        out = real_call(self, tokens)
        out[:, 0] += 0.5 * np.abs(out).max()
        return out

    _cached_copy(toy_onnx, onnx_dir, tmp_path)
    monkeypatch.setattr(mmrag.model.onnx_text.OnnxTextTower, "__call__", skewed)
    clip = ClipModel("toy", device="cpu", text_runtime="onnx", runtime_dir=tmp_path)
    with pytest.raises(TextRuntimeError, match="differs from torch"):
        clip.encode_query_texts(["a red circle"])
    assert not list(tmp_path.glob("*.onnx"))  # the bad export is not kept


def test_missing_exporter_names_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    clip = ClipModel("toy", device="cpu", text_runtime="onnx", runtime_dir=tmp_path)
    with pytest.raises(TextRuntimeError, match="pip install onnxruntime onnx onnxscript"):
        clip.prepare_text_runtime()


def test_onnx_is_refused_where_it_cannot_apply(tmp_path: Path) -> None:
    clip = ClipModel("toy", device="cpu", precision="bf16", text_runtime="onnx", runtime_dir=tmp_path)
    with pytest.raises(TextRuntimeError, match="precision is bf16"):
        clip.encode_query_texts(["a red circle"])
    auto = ClipModel("toy", device="cpu", precision="bf16", runtime_dir=tmp_path)
    assert auto.encode_query_texts(["a red circle"]).shape == (1, auto.dim)
    assert auto.text_runtime_status == "torch (precision is bf16)"


def test_torch_runtime_never_exports(tmp_path: Path) -> None:
    clip = ClipModel("toy", device="cpu", text_runtime="torch", runtime_dir=tmp_path / "onnx")
    np.testing.assert_allclose(clip.encode_query_texts(TEXTS), clip.encode_texts(TEXTS), atol=1e-6)
    assert clip.text_runtime_status == "torch (text_runtime=torch)"
    with pytest.raises(TextRuntimeError, match="MMRAG_TEXT_RUNTIME=torch"):
        clip.prepare_text_runtime()
    assert not (tmp_path / "onnx").exists()


def test_text_runtime_setting(tmp_path: Path) -> None:
    settings = Settings.from_env({"MMRAG_TEXT_RUNTIME": "onnx", "MMRAG_HOME": str(tmp_path)})
    clip = ClipModel.from_settings(settings)
    assert clip.text_runtime == "onnx"
    assert clip.runtime_dir == tmp_path / "onnx"
    with pytest.raises(ConfigError, match="MMRAG_TEXT_RUNTIME"):
        Settings.from_env({"MMRAG_TEXT_RUNTIME": "tensorrt"})
    with pytest.raises(ConfigError, match="text runtime"):
        ClipModel("toy", text_runtime="fast")


def test_search_results_are_the_same_on_either_runtime(toy_onnx: ClipModel, demo_kb: KnowledgeBase) -> None:
    on_torch = demo_kb
    on_onnx = KnowledgeBase(on_torch.store.client, toy_onnx, name=on_torch.name, location=on_torch.location)
    torch_search, onnx_search = on_torch.as_retriever(k=8), on_onnx.as_retriever(k=8)
    for query in ["a red circle", "一个蓝色的正方形", "green triangle notes", "紫色"]:
        expected, got = torch_search.search(query).hits, onnx_search.search(query).hits
        assert expected, query
        assert [h.id for h in got] == [h.id for h in expected], query
        np.testing.assert_allclose([h.relevance for h in got], [h.relevance for h in expected], atol=1e-4)
        assert got[0].document == expected[0].document
