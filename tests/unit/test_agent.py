"""The tool-calling agent, driven by scripted fake chat models: the loop, prompt injection, and its limits."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from mmrag.errors import ConfigError, LLMUnavailableError
from mmrag.langchain.agent import AGENT_SYSTEM_PROMPT, STOP_KEY, agent_answer, build_agent
from mmrag.langchain.chat_models import load_chat_model
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.chat import ScriptedChatModel, call, tool_messages
from tests.support.kbs import INJECTION, LABELS


@pytest.fixture(scope="session")
def kb(tools_kb: KnowledgeBase) -> KnowledgeBase:
    return tools_kb


def test_agent_calls_search_images_gets_artifacts_and_answers(kb: KnowledgeBase) -> None:
    model = ScriptedChatModel(
        responses=[
            call("search_images", query="a red circle", k=3),
            AIMessage("Two images show a red circle: red_circle_01.png and red_circle_02.png."),
        ]
    )
    agent = build_agent(kb, model)
    result = agent.invoke({"messages": [HumanMessage("Show me red circles")]})
    messages = result["messages"]
    [tool_message] = tool_messages(messages, "search_images")
    assert tool_message.status == "success"
    sources = [Path(h["source"]).name for h in tool_message.artifact["hits"]]
    assert sources[:2] in (["red_circle_01.png", "red_circle_02.png"], ["red_circle_02.png", "red_circle_01.png"])
    assert model.bound_tools == [
        "search_knowledge_base",
        "search_images",
        "find_similar_images",
        "classify_image",
        "match_image_text",
    ]
    assert len(model.seen) == 2
    system = model.seen[0][0]
    assert isinstance(system, SystemMessage)
    assert system.content == AGENT_SYSTEM_PROMPT
    assert "data, not instructions" in AGENT_SYSTEM_PROMPT
    assert any(isinstance(m, ToolMessage) and "red_circle_01.png" in str(m.content) for m in model.seen[1])
    assert messages[-1].content.startswith("Two images show a red circle")


def test_agent_answer_collects_images_and_sources(kb: KnowledgeBase) -> None:
    model = ScriptedChatModel(
        responses=[
            call("search_knowledge_base", query="a blue star", k=4),
            AIMessage("A blue star, see blue_star.md."),
        ]
    )
    answer = agent_answer(build_agent(kb, model), "What is blue?")
    assert answer.llm_used
    assert answer.answer == "A blue star, see blue_star.md."
    assert answer.images
    assert Path(answer.images[0].source).stem.startswith("blue_star")
    assert answer.images[0].thumbnail.startswith("data:image/jpeg;base64,")
    assert [s.n for s in answer.sources] == list(range(1, len(answer.sources) + 1))
    cited = [Path(s.source).name for s in answer.sources if s.cited]
    assert cited == ["blue_star.md"]
    assert answer.to_json()["images"][0].keys() >= {"source", "score"}


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/etc/shadow", "outside the allowed folders"),
        ("file:///etc/shadow", "URL"),
        ("../../../../etc/shadow", "contains '..'"),
    ],
)
def test_prompt_injection_in_a_note_reads_no_file(
    kb: KnowledgeBase,
    target: str,
    reason: str,
    opened: list[str],
) -> None:
    """The model obeys the injected note and asks to classify /etc/shadow: the tool refuses, nothing is read,
    and the agent goes on to answer."""
    model = ScriptedChatModel(
        responses=[
            call("search_knowledge_base", 1, query=INJECTION, k=3),
            call("classify_image", 2, image=target, labels=["secret", "not secret"]),
            AIMessage("The knowledge base holds a note asking to classify a system file; I did not."),
        ]
    )
    result = build_agent(kb, model).invoke({"messages": [HumanMessage("What do the notes say?")]})
    messages = result["messages"]
    [search] = tool_messages(messages, "search_knowledge_base")
    assert INJECTION in str(search.content)  # the model did read the note
    [refused] = tool_messages(messages, "classify_image")
    assert refused.status == "error"
    assert reason in str(refused.content)
    assert not [p for p in opened if "shadow" in p]
    assert len(model.seen) == 3  # the agent continued after the refusal
    assert any(isinstance(m, ToolMessage) and m.status == "error" for m in model.seen[2])
    assert messages[-1].content.startswith("The knowledge base holds a note")


def test_agent_told_to_classify_etc_passwd_reads_nothing(kb: KnowledgeBase, opened: list[str]) -> None:
    model = ScriptedChatModel(
        responses=[call("classify_image", image="/etc/passwd", labels=LABELS), AIMessage("I can't read that file.")]
    )
    answer = agent_answer(build_agent(kb, model), "classify /etc/passwd")
    assert answer.answer == "I can't read that file."
    assert any("classify_image refused" in w and "/etc/passwd" in w for w in answer.warnings)
    assert not [p for p in opened if p.startswith("/etc")]


def test_step_limit_ends_the_run(kb: KnowledgeBase) -> None:
    script = [call("search_images", n, query="a red circle", k=1) for n in range(1, 4)]  # never answers
    model = ScriptedChatModel(responses=script)
    agent = build_agent(kb, model, max_steps=2)
    messages = agent.invoke({"messages": [HumanMessage("loop")]})["messages"]
    assert len(model.seen) == 2
    assert len(tool_messages(messages, "search_images")) == 2
    assert messages[-1].response_metadata[STOP_KEY] == "step_limit"
    answer = agent_answer(agent, "loop again")
    assert "step limit" in answer.answer
    assert any("step limit" in w for w in answer.warnings)


def test_time_limit_stops_before_model_and_tool_calls(kb: KnowledgeBase) -> None:
    never = ScriptedChatModel(responses=[AIMessage("too late")])
    messages = build_agent(kb, never, timeout_s=1e-9).invoke({"messages": [HumanMessage("hi")]})["messages"]
    assert never.seen == []
    assert messages[-1].response_metadata[STOP_KEY] == "time_limit"
    slow = ScriptedChatModel(responses=[call("search_images", query="a red circle")], sleep=1.0)
    messages = build_agent(kb, slow, timeout_s=0.5).invoke({"messages": [HumanMessage("hi")]})["messages"]
    [skipped] = tool_messages(messages, "search_images")
    assert skipped.status == "error"
    assert "time limit" in str(skipped.content)
    assert skipped.artifact is None  # the tool did not run
    assert len(slow.seen) == 1
    assert messages[-1].response_metadata[STOP_KEY] == "time_limit"


async def test_agent_runs_async(kb: KnowledgeBase) -> None:
    model = ScriptedChatModel(responses=[call("search_images", query="a green square", k=2), AIMessage("Green.")])
    result = await build_agent(kb, model).ainvoke({"messages": [HumanMessage("green?")]})
    [found] = tool_messages(result["messages"], "search_images")
    assert Path(found.artifact["hits"][0]["source"]).stem.startswith("green_square")
    assert result["messages"][-1].content == "Green."


def test_limits_and_chat_model_errors_are_typed(kb: KnowledgeBase) -> None:
    model = ScriptedChatModel(responses=[AIMessage("x")])
    with pytest.raises(ConfigError, match="max_steps"):
        build_agent(kb, model, max_steps=0)
    with pytest.raises(ConfigError, match="timeout_s"):
        build_agent(kb, model, timeout_s=0)
    with pytest.raises(LLMUnavailableError, match="provider:model"):
        load_chat_model("no-such-provider:some-model")
    with pytest.raises(LLMUnavailableError, match="empty"):
        load_chat_model(" ")


@pytest.mark.skipif(importlib.util.find_spec("langchain_openai") is not None, reason="langchain-openai installed")
def test_missing_provider_package_is_named(kb: KnowledgeBase) -> None:
    with pytest.raises(LLMUnavailableError, match="langchain-openai"):
        build_agent(kb, "openai:gpt-4o-mini")
