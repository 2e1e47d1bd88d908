"""The demo, search, classify and match commands, in-process on the toy model's demo (built by ``mmrag demo``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from mmrag.toy.shapes import CLASSES, draw
from tests.support.cli import MmragCli
from tests.support.files import make_folder


def test_demo_status(mmrag_cli: MmragCli, cli_demo_db: str) -> None:
    status = mmrag_cli("status", "--db", cli_demo_db, "--json").json()
    assert (status["model"], status["images"], status["text_documents"]) == ("toy", 48, 25)


def test_search_json(mmrag_cli: MmragCli, cli_demo_db: str) -> None:
    db = cli_demo_db
    hits = mmrag_cli("search", "a red circle", "--db", db, "-k", "5", "--json").json()
    assert len(hits) <= 5
    for hit in hits:
        assert {"id", "modality", "source", "score"} <= set(hit)
    assert {Path(h["source"]).stem for h in hits[:3]} == {"red_circle_01", "red_circle_02", "red_circle"}
    text = next(h for h in hits if h["modality"] == "text")
    assert "red circle" in text["content"]
    images = mmrag_cli("search", "一个绿色的正方形", "--db", db, "--modality", "image", "--json").json()
    assert {h["modality"] for h in images} == {"image"}
    assert Path(images[0]["source"]).stem.startswith("green_square")


def test_search_by_image_and_arithmetic(mmrag_cli: MmragCli, cli_demo_db: str, tmp_path: Path) -> None:
    db = cli_demo_db
    query = tmp_path / "q.png"
    draw(CLASSES[0], random.Random(3), size=128).save(query)
    hits = mmrag_cli("search", "--image", str(query), "--db", db, "--json").json()
    assert Path(hits[0]["source"]).stem.startswith("red_circle")
    combined = mmrag_cli(
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
    ).json()
    assert Path(combined[0]["source"]).stem.startswith("blue_circle")


def test_classify_file_and_kb_image(mmrag_cli: MmragCli, cli_demo_db: str, tmp_path: Path) -> None:
    image = tmp_path / "star.png"
    draw(CLASSES[11], random.Random(4), size=96).save(image)  # blue star
    probs = mmrag_cli(
        "--model", "toy", "classify", str(image), "--labels", "blue star,red circle,green square", "--json"
    ).json()
    assert max(probs, key=probs.get) == "blue star"
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    db = cli_demo_db
    hit = mmrag_cli("search", "a yellow square", "--db", db, "--modality", "image", "--json").json()[0]
    probs = mmrag_cli("classify", hit["id"], "--labels", "yellow square,purple star", "--db", db, "--json").json()
    assert max(probs, key=probs.get) == "yellow square"


def test_match(mmrag_cli: MmragCli, tmp_path: Path) -> None:
    image = tmp_path / "circle.png"
    draw(CLASSES[0], random.Random(5), size=96).save(image)
    yes = mmrag_cli("--model", "toy", "match", str(image), "a red circle", "--json").json()
    no = mmrag_cli("--model", "toy", "match", str(image), "a purple star", "--json").json()
    assert yes["match"] is True
    assert no["match"] is False


def test_language_warning_is_printed(mmrag_cli: MmragCli, tmp_path: Path, tiny_model_id: str) -> None:
    mmrag_cli("index", str(make_folder(tmp_path / "files")), "--model", tiny_model_id)
    result = mmrag_cli("search", "一只猫", "--threshold", "0")
    assert "warning:" in result.stderr
    assert "xlm-roberta-base-ViT-B-32" in result.stderr


def test_missing_image_is_an_error(mmrag_cli: MmragCli, tmp_path: Path) -> None:
    result = mmrag_cli("--model", "toy", "classify", str(tmp_path / "none.png"), "--labels", "a,b", check=False)
    assert result.exit_code == 1
    assert "none.png" in result.stderr


def test_one_shot_commands_use_only_a_cached_export(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from mmrag.cli.common import settings_from

    ctx: Any = SimpleNamespace(obj={})
    monkeypatch.setenv("MMRAG_TEXT_RUNTIME", "auto")
    assert settings_from(ctx, one_query=True).text_runtime == "cached"  # one query doesn't repay an export
    assert settings_from(ctx).text_runtime == "auto"  # chat and ui
    monkeypatch.setenv("MMRAG_TEXT_RUNTIME", "onnx")
    assert settings_from(ctx, one_query=True).text_runtime == "onnx"  # an explicit choice is kept
