"""The toy world and the committed toy CLIP checkpoint (never retrained here)."""

from __future__ import annotations

import ast
import json
import logging
import random
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import mmrag.toy
from mmrag.toy import TOY_MODEL_NAME, checkpoint_dir, toy_model_id
from mmrag.toy.report import RECALL_BAR, ZERO_SHOT_BAR, ToyReport, evaluate
from mmrag.toy.shapes import (
    CLASSES,
    COLOURS,
    EN_TEMPLATES,
    MAX_BACKGROUND_CHROMA,
    SHAPES,
    ZH_TEMPLATES,
    captions,
    captions_en,
    captions_zh,
    draw,
    make_dataset,
)
from mmrag.toy.train import CONFIG_NAME, MODEL_CFG, WEIGHTS_NAME

MAX_CHECKPOINT_BYTES = 20 * 1024 * 1024


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return float(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5)


# --- the synthetic world ------------------------------------------------------------------


def test_24_distinct_classes_with_bilingual_captions() -> None:
    assert len(COLOURS) >= 6
    assert len(SHAPES) == 4
    assert len(CLASSES) == len(COLOURS) * len(SHAPES) == 24
    assert len(set(CLASSES)) == 24
    assert len({c.caption_en for c in CLASSES}) == 24
    assert len({c.caption_zh for c in CLASSES}) == 24
    assert len({c.label for c in CLASSES}) == 24
    # colours are far apart, so a colour never passes for another
    assert all(max(c.rgb) - min(c.rgb) >= 3 * MAX_BACKGROUND_CHROMA for c in COLOURS)
    rgbs = [c.rgb for c in COLOURS]
    assert min(_distance(a, b) for i, a in enumerate(rgbs) for b in rgbs[i + 1 :]) > 80


def test_captions_read_naturally_in_both_languages() -> None:
    red_circle = next(c for c in CLASSES if c.label == "red-circle")
    assert red_circle.caption_en == "a red circle"
    assert red_circle.caption_zh == "一个红色的圆形"
    orange_star = next(c for c in CLASSES if c.label == "orange-star")
    assert orange_star.caption_en == "an orange star"
    assert "red circle" in captions_en(red_circle)
    assert "红色圆形" in captions_zh(red_circle)
    for cls in CLASSES:
        everything = captions(cls)
        assert len(everything) == len(EN_TEMPLATES) + len(ZH_TEMPLATES)
        assert len(set(everything)) == len(everything)
        assert all(cls.colour.en in c and cls.shape.en in c for c in captions_en(cls))
        assert all(cls.colour.zh in c and cls.shape.zh in c for c in captions_zh(cls))


def test_every_caption_fits_the_text_context() -> None:
    from open_clip.tokenizer import _tokenizer

    context = MODEL_CFG["text_cfg"]["context_length"]
    longest = max(len(_tokenizer.encode(text)) + 2 for cls in CLASSES for text in captions(cls))
    assert longest <= context


def test_draw_is_deterministic_and_sized() -> None:
    cls = CLASSES[5]
    a = draw(cls, random.Random(7))
    b = draw(cls, random.Random(7))
    c = draw(cls, random.Random(8))
    assert a.mode == "RGB"
    assert a.size == (64, 64)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert draw(cls, random.Random(7), size=200).size == (200, 200)


@pytest.mark.parametrize("size", [64, 160])
def test_shape_colour_is_present_and_background_is_not_it(size: int) -> None:
    import numpy as np

    rng = random.Random(3)
    for cls in CLASSES:
        for _ in range(3):
            image = draw(cls, rng, size)
            pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3)
            near = np.linalg.norm(pixels - np.array(cls.colour.rgb), axis=1) < 45
            assert near.mean() >= 0.02, cls.label  # the smallest star covers about 4% of the image
            # the shape stays inside its circumscribed circle, so the corners are background
            for xy in [(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)]:
                corner: Any = image.getpixel(xy)
                assert max(corner) - min(corner) <= MAX_BACKGROUND_CHROMA + 12, (cls.label, corner)
                assert _distance(corner, cls.colour.rgb) > 60, (cls.label, corner)


def test_make_dataset_is_deterministic_and_class_major() -> None:
    first = make_dataset(2, seed=11, size=32)
    second = make_dataset(2, seed=11, size=32)
    assert len(first) == 48
    assert [c for _, c in first] == [c for c in CLASSES for _ in range(2)]
    assert all(a.tobytes() == b.tobytes() for (a, _), (b, _) in zip(first, second, strict=True))
    assert first[0][0].tobytes() != make_dataset(2, seed=12, size=32)[0][0].tobytes()


def test_importing_the_toy_package_does_not_import_torch() -> None:
    code = (
        "import sys, mmrag.toy, mmrag.toy.shapes, mmrag.toy.train, mmrag.toy.report, mmrag.toy.demo; "
        "bad = [m for m in ('torch', 'open_clip') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_toy_package_imports_only_the_toy_and_its_model_stack() -> None:
    """It sits at the bottom of the layers: mmrag.toy.*, the standard library, numpy, PIL, torch, open_clip."""
    allowed = {"mmrag", "numpy", "PIL", "torch", "open_clip", "safetensors"} | set(sys.stdlib_module_names)
    for path in sorted(Path(mmrag.toy.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, (path.name, node.module)
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] in allowed, (path.name, name)
                assert name.split(".")[0] != "mmrag" or name.startswith("mmrag.toy"), (path.name, name)


def test_training_and_the_report_are_separate_modules() -> None:
    """The report measures what training saved; training never needs the report."""
    import mmrag.toy.report as report
    import mmrag.toy.train as train

    assert not hasattr(train, "evaluate")
    assert not hasattr(train, "ToyReport")
    tree = ast.parse(Path(train.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(name and name.startswith("mmrag.toy.report") for name in imported)
    assert report.CONFIG_NAME is train.CONFIG_NAME
    assert report.WEIGHTS_NAME is train.WEIGHTS_NAME


# --- the committed checkpoint --------------------------------------------------------------


def test_model_id_points_at_the_packaged_checkpoint() -> None:
    assert TOY_MODEL_NAME == "toy"
    assert toy_model_id() == f"local-dir:{checkpoint_dir()}"
    assert checkpoint_dir().name == "checkpoint"
    assert (checkpoint_dir() / CONFIG_NAME).is_file()
    weights = checkpoint_dir() / WEIGHTS_NAME
    assert weights.is_file()
    assert weights.stat().st_size <= MAX_CHECKPOINT_BYTES


def test_config_is_what_open_clip_reads() -> None:
    config = json.loads((checkpoint_dir() / CONFIG_NAME).read_text(encoding="utf-8"))
    assert config["model_cfg"] == MODEL_CFG
    assert config["preprocess_cfg"]["size"] == MODEL_CFG["vision_cfg"]["image_size"]
    assert config["mmrag_toy"]["steps"] > 0


@pytest.fixture(scope="module")
def loaded() -> tuple[Any, Any, Any, list[logging.LogRecord], list[warnings.WarningMessage]]:
    import open_clip

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler = Keep(level=logging.WARNING)
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, _, preprocess = open_clip.create_model_and_transforms(toy_model_id())
            tokenizer = open_clip.get_tokenizer(toy_model_id())
    finally:
        root.removeHandler(handler)
    model.eval()
    return model, preprocess, tokenizer, records, list(caught)


def test_checkpoint_loads_through_local_dir_cleanly(loaded: Any) -> None:
    import open_clip
    from safetensors.torch import load_file

    model, _, tokenizer, records, caught = loaded
    assert isinstance(model, open_clip.CLIP)
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
    assert [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)] == []
    # strict: the file holds exactly the model's keys
    saved = load_file(str(checkpoint_dir() / WEIGHTS_NAME))
    assert set(saved) == set(model.state_dict())
    assert tokenizer.context_length == MODEL_CFG["text_cfg"]["context_length"]


def test_larger_drawings_and_short_phrasings_work(loaded: Any) -> None:
    """The runtime feeds big images through the model's own preprocess; queries vary."""
    import torch

    model, preprocess, tokenizer, _, _ = loaded
    rng = random.Random(99)
    images = torch.stack([preprocess(draw(cls, rng, size=256)) for cls in CLASSES])
    with torch.inference_mode():
        image_features = model.encode_image(images, normalize=True)
        for texts in (
            [c.caption_en for c in CLASSES],
            [f"{c.colour.en} {c.shape.en}" for c in CLASSES],
            [f"{c.colour.zh}{c.shape.zh}" for c in CLASSES],
        ):
            text_features = model.encode_text(tokenizer(texts), normalize=True)
            predicted = (image_features @ text_features.T).argmax(dim=1)
            correct = int((predicted == torch.arange(len(CLASSES))).sum())
            assert correct >= 22, (texts[0], correct)


@pytest.fixture(scope="module")
def report() -> ToyReport:
    return evaluate(checkpoint_dir(), n_per_class=3)


def test_weights_are_trained_not_random(report: ToyReport) -> None:
    assert report.n_images == 72
    assert report.zero_shot_en >= 0.85
    assert report.zero_shot_zh >= 0.85
    assert report.recall_at_5_en >= 0.85
    assert report.recall_at_5_zh >= 0.85


def test_report_figures_are_in_range(report: ToyReport) -> None:
    for value in (
        report.zero_shot_en,
        report.zero_shot_zh,
        report.recall_at_5_en,
        report.recall_at_5_zh,
        report.zero_shot_unseen_en,
        report.zero_shot_unseen_zh,
    ):
        assert 0.0 <= value <= 1.0
    assert 1_000_000 < report.parameters < 10_000_000
    assert 0 < report.checkpoint_bytes <= MAX_CHECKPOINT_BYTES
    assert report.steps is not None
    assert report.steps > 0
    assert report.train_seconds is not None
    assert report.ok
    assert report.failures() == []
    lines = report.lines()
    assert any("zero-shot accuracy ZH" in line for line in lines)
    assert any("recall@5 EN" in line for line in lines)


def test_report_names_the_bars_it_misses() -> None:
    weak = ToyReport(
        zero_shot_en=0.95,
        zero_shot_zh=ZERO_SHOT_BAR - 0.1,
        recall_at_5_en=1.0,
        recall_at_5_zh=RECALL_BAR - 0.2,
        zero_shot_unseen_en=0.5,
        zero_shot_unseen_zh=0.5,
        n_images=24,
        parameters=1,
        checkpoint_bytes=1,
    )
    assert not weak.ok
    failures = weak.failures()
    assert len(failures) == 2
    assert "zero-shot accuracy (ZH)" in failures[0]
    assert "recall@5 (ZH)" in failures[1]
    assert not any("training" in line for line in weak.lines())
