"""The agent as the answer chain: one Runnable, one traced parent, the same Answer; scripted fake chat models."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable

from mmrag.errors import ConfigError, LLMError
from mmrag.langchain.agent import conversation_memory
from mmrag.langchain.agent_chain import AGENT_TAG, AgentAnswerChain, agent_chain
from mmrag.langchain.answer import RUN_NAME, Answer, AnswerChain
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.callbacks import Runs
from tests.support.chat import ScriptedChatModel, call


@pytest.fixture(scope="session")
def kb(tools_kb: KnowledgeBase) -> KnowledgeBase:
    return tools_kb


def red_circles() -> ScriptedChatModel:
    return ScriptedChatModel(
        responses=[
            call("search_images", query="a red circle", k=3),
            AIMessage("Two red circles: red_circle_01.png and red_circle_02.png."),
        ]
    )


def test_it_is_the_answer_chain_and_gives_the_agents_answer(kb: KnowledgeBase) -> None:
    chain = agent_chain(kb, red_circles())
    assert isinstance(chain, AnswerChain)
    assert isinstance(chain, Runnable)
    answer = chain.invoke("Show me red circles")
    assert isinstance(answer, Answer)
    assert answer.answer.startswith("Two red circles")
    assert answer.llm_used
    assert {Path(i.source).name for i in answer.images} >= {"red_circle_01.png", "red_circle_02.png"}
    assert {Path(s.source).name for s in answer.sources if s.cited} >= {"red_circle_01.png"}


def test_the_agents_model_and_tool_runs_sit_under_the_chains_run(kb: KnowledgeBase) -> None:
    runs = Runs()
    config: Any = {"callbacks": [runs], "tags": ["mine"], "metadata": {"user": "ada"}}
    agent_chain(kb, red_circles()).invoke("Show me red circles", config)
    [parent_id] = [i for i, r in runs.runs.items() if r["parent"] is None]
    parent = runs.runs[parent_id]
    assert parent["name"] == RUN_NAME
    assert {"mmrag", AGENT_TAG, "mine"} <= set(parent["tags"])
    assert parent["metadata"]["mmrag_kb"] == kb.location
    tools = [i for i, r in runs.runs.items() if r["kind"] == "tool"]
    models = [i for i, r in runs.runs.items() if r["kind"] == "llm"]
    assert [runs.runs[i]["name"] for i in tools] == ["search_images"]
    assert len(models) == 2  # the tool call, then the answer
    for run_id in tools + models:
        assert parent_id in runs.ancestors(run_id)
        assert runs.runs[run_id]["metadata"]["user"] == "ada"


def test_batch_astream_and_astream_events(kb: KnowledgeBase) -> None:
    model = ScriptedChatModel(responses=[AIMessage("No tools needed: circles."), AIMessage("Stars.")])
    answers = agent_chain(kb, model).batch(["circles?", "stars?"], {"max_concurrency": 1})
    assert [a.answer for a in answers] == ["No tools needed: circles.", "Stars."]

    async def run() -> tuple[list[Answer], list[str]]:
        chain = agent_chain(kb, red_circles())
        pieces = [p async for p in chain.astream("Show me red circles")]
        events = [e["event"] async for e in agent_chain(kb, red_circles()).astream_events("red?", version="v2")]
        return pieces, events

    pieces, events = asyncio.run(run())
    assert sum(pieces[1:], pieces[0]).answer.startswith("Two red circles")
    assert events[0] == "on_chain_start"
    assert {"on_tool_start", "on_tool_end", "on_chat_model_start", "on_chain_end"} <= set(events)


def test_a_thread_id_continues_the_conversation(kb: KnowledgeBase) -> None:
    model = ScriptedChatModel(responses=[AIMessage("A red circle."), AIMessage("Still the red circle.")])
    chain = agent_chain(kb, model, checkpointer=conversation_memory())
    chain.invoke({"question": "what is red?", "thread_id": "t1"})
    chain.invoke({"question": "and again?", "thread_id": "t1"})
    second = [m.content for m in model.seen[1] if isinstance(m, HumanMessage)]
    assert second == ["what is red?", "and again?"]


def test_retrieval_options_and_empty_questions_are_refused(kb: KnowledgeBase) -> None:
    chain = agent_chain(kb, red_circles())
    with pytest.raises(ConfigError, match="own retrieval"):
        chain.invoke({"question": "red?", "k": 3})
    with pytest.raises(ConfigError, match="empty"):
        chain.invoke("   ")


def test_a_failing_model_is_a_typed_error(kb: KnowledgeBase) -> None:
    class Broken(ScriptedChatModel):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("provider down")

    with pytest.raises(LLMError, match="provider down"):
        agent_chain(kb, Broken(responses=[AIMessage("x")])).invoke("red?")
    assert isinstance(agent_chain(kb, red_circles()), AgentAnswerChain)
