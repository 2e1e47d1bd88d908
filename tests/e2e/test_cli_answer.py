"""``mmrag ask`` and ``mmrag chat``, in-process: without an LLM, and with a fake one."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from mmrag.langchain.answer import NO_LLM_NOTE
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.chat import ScriptedChatModel, call
from tests.support.cli import MmragCli


@pytest.fixture(scope="session")
def kb(tools_kb: KnowledgeBase) -> KnowledgeBase:
    return tools_kb


@pytest.fixture(scope="session")
def db(kb: KnowledgeBase) -> str:
    return kb.location


def test_ask_json_without_llm(mmrag_cli: MmragCli, db: str) -> None:
    data = mmrag_cli("ask", "a red circle", "--db", db, "--json").json()
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


def test_ask_refuses_an_unusable_llm(mmrag_cli: MmragCli, db: str) -> None:
    bad = mmrag_cli("ask", "a blue star", "--db", db, env={"MMRAG_LLM": "no-such-provider:model"}, check=False)
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: cannot create the chat model 'no-such-provider:model'")
    assert "Traceback" not in bad.stderr


def test_chat_answers_until_end_of_input(mmrag_cli: MmragCli, db: str) -> None:
    result = mmrag_cli("chat", "--db", db, input="a red circle\n\na blue star\n")
    assert "retrieval only" in result.stdout.splitlines()[0]
    assert result.stdout.count(NO_LLM_NOTE) == 2
    assert "red_circle_01.png" in result.stdout
    assert "blue_star_01.png" in result.stdout


def test_ask_prints_image_paths(mmrag_cli: MmragCli, db: str, kb: KnowledgeBase) -> None:
    result = mmrag_cli("ask", "a blue star", "--db", db)
    assert result.stdout.startswith(NO_LLM_NOTE)
    assert str(Path(kb.location).parent.parent / "files" / "images" / "blue_star_01.png") in result.stdout


def test_chat_stops_at_exit(mmrag_cli: MmragCli, db: str) -> None:
    result = mmrag_cli("chat", "--db", db, input="a red circle\n\n  exit \na blue star\n")
    assert result.stdout.count(NO_LLM_NOTE) == 1  # "exit" ended it before the blue star
    assert "red_circle_01.png" in result.stdout
    assert "blue_star" not in result.stdout


# --- with a (fake) chat model ---------------------------------------------------------------


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


def test_ask_with_llm_prints_answer_images_and_sources(
    mmrag_cli: MmragCli, db: str, fake_llm: list[ScriptedChatModel]
) -> None:
    result = mmrag_cli("ask", "a red circle", "--llm", "fake:answer", "--db", db)
    lines = result.stdout.splitlines()
    assert lines[0] == "It is a red circle [1]."
    assert "Images:" in lines
    assert any(line.strip().endswith("red_circle_01.png  (a red circle)") for line in lines)
    assert any(line.startswith(" *[1] ") for line in lines)  # the cited source is marked
    data = mmrag_cli("ask", "a red circle", "--llm", "fake:answer", "--db", db, "--json").json()
    assert (data["llm_used"], data["answer"]) == (True, "It is a red circle [1].")


def test_ask_and_chat_with_agent(mmrag_cli: MmragCli, db: str, fake_llm: list[ScriptedChatModel]) -> None:
    data = mmrag_cli("ask", "red?", "--llm", "fake:agent", "--agent", "--db", db, "--json").json()
    assert data["answer"] == "Red circles: see the images."
    assert {Path(i["source"]).name for i in data["images"]} == {"red_circle_01.png", "red_circle_02.png"}
    chat = mmrag_cli("chat", "--llm", "fake:agent", "--agent", "--db", db, input="red?\n")
    assert "Red circles: see the images." in chat.stdout
    assert "red_circle_02.png" in chat.stdout
    usage = mmrag_cli("ask", "red?", "--agent", "--db", db, check=False)
    assert usage.exit_code == 2
    assert "--agent needs a chat model" in usage.stderr
