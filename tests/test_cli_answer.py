"""``mmrag ask`` and ``mmrag chat``: through the real entry point without an LLM, and in-process with a fake one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from typer.testing import CliRunner

from mmrag.cli import cli
from mmrag.langchain.answer import NO_LLM_NOTE
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.test_agent import ScriptedChatModel, call
from tests.test_tools import shared_kb


def mmrag(
    *args: str, home: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
    return subprocess.run(
        [sys.executable, "-m", "mmrag", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=clean | {"MMRAG_HOME": str(home)} | (env or {}),
        timeout=300,
    )


@pytest.fixture(scope="session")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    return shared_kb(tmp_path_factory)


@pytest.fixture(scope="session")
def db(kb: KnowledgeBase) -> str:
    return kb.location


def test_ask_json_without_llm(db: str, tmp_path: Path) -> None:
    proc = mmrag("ask", "a red circle", "--db", db, "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"answer", "images", "sources"} <= set(data)
    assert data["llm_used"] is False
    assert data["answer"].startswith(NO_LLM_NOTE)
    assert data["images"]
    for image in data["images"]:
        assert {"source", "score"} <= set(image)
        assert Path(image["source"]).is_file()
        assert 0.8 <= image["score"] <= 1
    assert {Path(i["source"]).name for i in data["images"]} >= {"red_circle_01.png", "red_circle_02.png"}
    assert any(s["snippet"] == "a red circle 一个红色的圆形" for s in data["sources"])


def test_ask_refuses_an_unusable_llm(db: str, tmp_path: Path) -> None:
    bad = mmrag("ask", "a blue star", "--db", db, home=tmp_path, env={"MMRAG_LLM": "no-such-provider:model"})
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: cannot create the chat model 'no-such-provider:model'")
    assert "Traceback" not in bad.stderr


def test_chat_answers_until_end_of_input(db: str, tmp_path: Path) -> None:
    proc = mmrag("chat", "--db", db, home=tmp_path, stdin="a red circle\n\na blue star\n")
    assert proc.returncode == 0, proc.stderr
    assert "retrieval only" in proc.stdout.splitlines()[0]
    assert proc.stdout.count(NO_LLM_NOTE) == 2
    assert "red_circle_01.png" in proc.stdout
    assert "blue_star_01.png" in proc.stdout


def test_ask_prints_image_paths(db: str, kb: KnowledgeBase) -> None:
    result = CliRunner().invoke(cli, ["ask", "a blue star", "--db", db])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(NO_LLM_NOTE)
    assert str(Path(kb.location).parent.parent / "files" / "images" / "blue_star_01.png") in result.stdout


def test_chat_stops_at_exit(db: str) -> None:
    result = CliRunner().invoke(cli, ["chat", "--db", db], input="a red circle\n\n  exit \na blue star\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.count(NO_LLM_NOTE) == 1  # "exit" ended it before the blue star
    assert "red_circle_01.png" in result.stdout
    assert "blue_star" not in result.stdout


# --- with a (fake) chat model, in-process ---------------------------------------------------------------


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> list[ScriptedChatModel]:
    """``--llm fake:…`` gives a scripted model (the last one made is at the end of the list)."""
    made: list[ScriptedChatModel] = []
    scripts = {
        "fake:answer": [AIMessage("It is a red circle [1].")],
        "fake:agent": [call("search_images", query="a red circle", k=2), AIMessage("Red circles: see the images.")],
    }

    def load(spec: str) -> ScriptedChatModel:
        made.append(ScriptedChatModel(responses=list(scripts[spec])))
        return made[-1]

    monkeypatch.setattr("mmrag.langchain.chat_models.load_chat_model", load)
    return made


def test_ask_with_llm_prints_answer_images_and_sources(db: str, fake_llm: list[ScriptedChatModel]) -> None:
    result = CliRunner().invoke(cli, ["ask", "a red circle", "--llm", "fake:answer", "--db", db])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "It is a red circle [1]."
    assert "Images:" in lines
    assert any(line.strip().endswith("red_circle_01.png  (a red circle)") for line in lines)
    assert any(line.startswith(" *[1] ") for line in lines)  # the cited source is marked
    as_json = CliRunner().invoke(cli, ["ask", "a red circle", "--llm", "fake:answer", "--db", db, "--json"])
    data = json.loads(as_json.stdout)
    assert (data["llm_used"], data["answer"]) == (True, "It is a red circle [1].")


def test_ask_and_chat_with_agent(db: str, fake_llm: list[ScriptedChatModel]) -> None:
    result = CliRunner().invoke(cli, ["ask", "red?", "--llm", "fake:agent", "--agent", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] == "Red circles: see the images."
    assert {Path(i["source"]).name for i in data["images"]} == {"red_circle_01.png", "red_circle_02.png"}
    chat = CliRunner().invoke(cli, ["chat", "--llm", "fake:agent", "--agent", "--db", db], input="red?\n")
    assert chat.exit_code == 0, chat.output
    assert "Red circles: see the images." in chat.stdout
    assert "red_circle_02.png" in chat.stdout
    usage = CliRunner().invoke(cli, ["ask", "red?", "--agent", "--db", db])
    assert usage.exit_code == 2
    assert "--agent needs a chat model" in usage.output
