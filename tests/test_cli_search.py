"""The demo, search, classify and match commands through the real entry point, on the toy model."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from mmrag.toy.shapes import CLASSES, draw
from tests.test_cli_kb import mmrag


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    out = mmrag("demo", "--json", home=home).stdout
    assert json.loads(out)["added"] == 73
    return home


def test_demo_status(demo_home: Path) -> None:
    status = json.loads(mmrag("status", "--db", str(demo_home / "demo" / "kb"), "--json", home=demo_home).stdout)
    assert (status["model"], status["images"], status["text_documents"]) == ("toy", 48, 25)


def test_search_json(demo_home: Path) -> None:
    db = str(demo_home / "demo" / "kb")
    hits = json.loads(mmrag("search", "a red circle", "--db", db, "-k", "5", "--json", home=demo_home).stdout)
    assert len(hits) <= 5
    for hit in hits:
        assert {"id", "modality", "source", "score"} <= set(hit)
    assert {Path(h["source"]).stem for h in hits[:3]} == {"red_circle_01", "red_circle_02", "red_circle"}
    text = next(h for h in hits if h["modality"] == "text")
    assert "red circle" in text["content"]
    images = json.loads(
        mmrag("search", "一个绿色的正方形", "--db", db, "--modality", "image", "--json", home=demo_home).stdout
    )
    assert {h["modality"] for h in images} == {"image"}
    assert Path(images[0]["source"]).stem.startswith("green_square")


def test_search_by_image_and_arithmetic(demo_home: Path, tmp_path: Path) -> None:
    db = str(demo_home / "demo" / "kb")
    query = tmp_path / "q.png"
    draw(CLASSES[0], random.Random(3), size=128).save(query)
    hits = json.loads(mmrag("search", "--image", str(query), "--db", db, "--json", home=demo_home).stdout)
    assert Path(hits[0]["source"]).stem.startswith("red_circle")
    combined = json.loads(
        mmrag(
            "search",
            "a blue circle",
            "--image",
            str(query),
            "--minus",
            "a red circle",
            "--modality",
            "image",
            "--db",
            db,
            "--json",
            home=demo_home,
        ).stdout
    )
    assert Path(combined[0]["source"]).stem.startswith("blue_circle")


def test_classify_file_and_kb_image(demo_home: Path, tmp_path: Path) -> None:
    image = tmp_path / "star.png"
    draw(CLASSES[11], random.Random(4), size=96).save(image)  # blue star
    probs = json.loads(
        mmrag(
            "--model",
            "toy",
            "classify",
            str(image),
            "--labels",
            "blue star,red circle,green square",
            "--json",
            home=demo_home,
        ).stdout
    )
    assert max(probs, key=probs.get) == "blue star"
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    db = str(demo_home / "demo" / "kb")
    hit = json.loads(
        mmrag("search", "a yellow square", "--db", db, "--modality", "image", "--json", home=demo_home).stdout
    )[0]
    probs = json.loads(
        mmrag(
            "classify", hit["id"], "--labels", "yellow square,purple star", "--db", db, "--json", home=demo_home
        ).stdout
    )
    assert max(probs, key=probs.get) == "yellow square"


def test_match(demo_home: Path, tmp_path: Path) -> None:
    image = tmp_path / "circle.png"
    draw(CLASSES[0], random.Random(5), size=96).save(image)
    yes = json.loads(mmrag("--model", "toy", "match", str(image), "a red circle", "--json", home=demo_home).stdout)
    no = json.loads(mmrag("--model", "toy", "match", str(image), "a purple star", "--json", home=demo_home).stdout)
    assert yes["match"] is True
    assert no["match"] is False


def test_language_warning_is_printed(tmp_path: Path, tiny_model_id: str) -> None:
    from tests.kbutil import make_folder

    home = tmp_path / "home"
    mmrag("index", str(make_folder(tmp_path / "files")), "--model", tiny_model_id, home=home)
    proc = mmrag("search", "一只猫", "--threshold", "0", home=home)
    assert "warning:" in proc.stderr
    assert "xlm-roberta-base-ViT-B-32" in proc.stderr


def test_missing_image_is_an_error(demo_home: Path, tmp_path: Path) -> None:
    proc = mmrag(
        "--model", "toy", "classify", str(tmp_path / "none.png"), "--labels", "a,b", home=demo_home, check=False
    )
    assert proc.returncode == 1
    assert "none.png" in proc.stderr


def test_one_shot_commands_keep_query_texts_on_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from mmrag.cli.common import settings_from

    ctx: Any = SimpleNamespace(obj={})
    monkeypatch.setenv("MMRAG_TEXT_RUNTIME", "auto")
    assert settings_from(ctx, one_query=True).text_runtime == "torch"  # one query doesn't repay an export
    assert settings_from(ctx).text_runtime == "auto"  # chat and ui
    monkeypatch.setenv("MMRAG_TEXT_RUNTIME", "onnx")
    assert settings_from(ctx, one_query=True).text_runtime == "onnx"  # an explicit choice is kept
