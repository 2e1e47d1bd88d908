"""Offline: every command works on the toy model with the network blocked, and one that needs a download fails
fast with instructions.

Each command runs in a fresh process whose every connection other than to loopback or a Unix socket fails
(``socket.socket.connect`` and DNS patched, as on a machine with no route out), with ``HF_ENDPOINT`` pointing at a
closed local port and, for the download case, an empty Hugging Face cache.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from mmrag.toy.shapes import CLASSES, draw
from tests.reliability.zygote import Result, Zygote

OFFLINE = ("offline",)
ENV = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": ""}
FAIL_FAST_S = 15


def _shape(path: Path, label: str, seed: int) -> Path:
    cls = next(c for c in CLASSES if c.label == label)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw(cls, random.Random(seed), size=128).save(path)
    return path


@pytest.fixture(scope="module")
def offline_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("offline-home")


def _run(zygote: Zygote, home: Path, *argv: str, options: tuple[str, ...] = OFFLINE) -> Result:
    env = {**ENV, "MMRAG_HOME": str(home), "MMRAG_TEXT_RUNTIME": "torch"}
    result = zygote.run(*argv, env=env, options=options, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_the_network_is_really_blocked_in_these_processes(zygote: Zygote) -> None:
    result = zygote.call("try_connect", options=OFFLINE, host="93.184.215.14", port=443).wait(60)
    assert result.code == 0, result.stderr
    assert result.result["connected"] is False
    assert "blocked by the reliability suite" in result.result["error"]


def test_every_command_works_offline_on_the_toy_model(offline_home: Path, zygote: Zygote, tmp_path: Path) -> None:
    demo = _run(zygote, offline_home, "demo", "--json")
    assert demo.code == 0, demo.stderr
    assert json.loads(demo.stdout)["added"] > 0
    db = offline_home / "demo" / "kb"
    at = ["--db", str(db)]

    status = _run(zygote, offline_home, "status", "--json", *at)
    assert status.code == 0, status.stderr
    assert json.loads(status.stdout)["model"] == "toy"

    search = _run(zygote, offline_home, "search", "a red circle", "--json", "--modality", "image", *at)
    assert search.code == 0, search.stderr
    assert "red_circle" in json.loads(search.stdout)[0]["source"]

    circle = _shape(tmp_path / "query" / "circle.png", "red-circle", seed=99)
    classify = _run(
        zygote, offline_home, "--model", "toy", "classify", str(circle), "--labels", "red circle,blue star", "--json"
    )
    assert classify.code == 0, classify.stderr
    probabilities = json.loads(classify.stdout)
    assert max(probabilities, key=probabilities.get) == "red circle"

    match = _run(zygote, offline_home, "--model", "toy", "match", str(circle), "a red circle", "--json")
    assert match.code == 0, match.stderr
    assert json.loads(match.stdout)["match"] is True

    ask = _run(zygote, offline_home, "ask", "what is a blue star?", "--json", *at)
    assert ask.code == 0, ask.stderr
    assert json.loads(ask.stdout)["images"]

    folder = tmp_path / "more"
    for i, label in enumerate(["green-square", "yellow-triangle", "blue-star"]):
        _shape(folder / f"shape{i}.png", label, seed=i)
    index = _run(zygote, offline_home, "--model", "toy", "index", str(folder), "--json", *at)
    assert index.code == 0, index.stderr
    assert json.loads(index.stdout)["added"] == 3

    info = _run(zygote, offline_home, "--model", "toy", "info", "--json")
    assert info.code == 0, info.stderr
    assert json.loads(info.stdout)["dim"] > 0


@pytest.mark.parametrize(
    ("model", "mentions"),
    [
        (["--model", "ViT-B-32"], ["ViT-B-32", "laion2b_s34b_b79k"]),
        (["--model", "xlm-roberta-base-ViT-B-32"], ["xlm-roberta-base-ViT-B-32", "laion5b_s13b_b90k"]),
        (["--model", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"], ["hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"]),
    ],
    ids=["ViT-B-32", "multilingual", "hf-hub"],
)
def test_a_model_that_needs_a_download_fails_fast_with_instructions(
    model: list[str], mentions: list[str], offline_home: Path, zygote: Zygote
) -> None:
    start = time.monotonic()
    result = _run(zygote, offline_home, *model, "info", options=("offline", "empty_hf_cache"))
    seconds = time.monotonic() - start
    assert result.code == 1, result.stdout
    assert seconds < FAIL_FAST_S
    message = result.stderr
    assert message.startswith("error: weights for model")
    for needed in [*mentions, "not in the local cache", "--model toy", "local-dir:", "--pretrained", "copy"]:
        assert needed in message, (needed, message)
