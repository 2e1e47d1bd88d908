"""The answer as an LCEL Runnable: invoke, stream, batch, astream, astream_events, and one traced parent run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable

from mmrag.errors import ConfigError, LLMError
from mmrag.langchain.answer import NO_LLM_NOTE, Answer, AnswerChain, answer_chain, answer_question
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.callbacks import Runs
from tests.support.chat import ScriptedChatModel


@pytest.fixture(scope="session")
def kb(tools_kb: KnowledgeBase) -> KnowledgeBase:
    return tools_kb


def test_it_is_a_runnable_and_invoke_gives_the_answer(kb: KnowledgeBase) -> None:
    model = ScriptedChatModel(responses=[AIMessage("A red circle [1].")])
    chain = answer_chain(kb, model, k=4)
    assert isinstance(chain, Runnable)
    answer = chain.invoke("a red circle")
    assert isinstance(answer, Answer)
    assert answer.answer == "A red circle [1]."
    assert answer.llm_used
    assert [s.n for s in answer.sources if s.cited] == [1]
    assert {Path(i.source).name for i in answer.images} >= {"red_circle_01.png"}


def test_retriever_prompt_and_llm_runs_sit_under_one_parent_with_tags_and_metadata(kb: KnowledgeBase) -> None:
    runs = Runs()
    model = ScriptedChatModel(responses=[AIMessage("ok [1]")])
    config: Any = {"callbacks": [runs], "tags": ["mine"], "metadata": {"user": "ada"}}
    answer_chain(kb, model, k=3).invoke({"question": "a red circle"}, config)
    [parent_id] = [i for i, r in runs.runs.items() if r["parent"] is None]
    parent = runs.runs[parent_id]
    assert parent["name"] == "mmrag_answer"
    assert runs.kinds_under(parent_id) == ["chain", "llm", "retriever"]
    for run in runs.runs.values():  # tags and metadata are inherited by every run under the parent
        assert {"mmrag", "mine"} <= set(run["tags"])
        assert run["metadata"]["user"] == "ada"
        assert run["metadata"]["mmrag_kb"] == kb.location
        assert run["metadata"]["mmrag_k"] == 3
    names = {r["kind"]: r["name"] for r in runs.runs.values() if r["parent"] == parent_id}
    assert names["chain"] == "mmrag_prompt"
    assert names["retriever"] == "MultimodalRetriever"


def test_stream_gives_sources_first_then_text_and_the_pieces_add_up(kb: KnowledgeBase) -> None:
    model = GenericFakeChatModel(messages=iter(["The red circle [1] is red."]))
    pieces = list(answer_chain(kb, model).stream("a red circle"))
    first, *rest = pieces
    assert first.images  # before any text
    assert first.sources
    assert not first.answer
    assert len([p for p in rest if p.answer]) > 3
    whole = sum(rest, first)
    assert whole.answer == "The red circle [1] is red."
    assert [s.n for s in whole.sources if s.cited] == [1]
    assert whole.model == "GenericFakeChatModel"


def test_batch_answers_each_question(kb: KnowledgeBase) -> None:
    model = ScriptedChatModel(responses=[AIMessage("circle [1]"), AIMessage("star [1]")])
    answers = answer_chain(kb, model).batch(["a red circle", "a blue star"], {"max_concurrency": 1})
    assert [a.question for a in answers] == ["a red circle", "a blue star"]
    assert [a.answer for a in answers] == ["circle [1]", "star [1]"]


def test_astream_and_astream_events(kb: KnowledgeBase) -> None:
    async def run() -> tuple[list[Answer], list[dict[str, Any]]]:
        chain = answer_chain(kb, GenericFakeChatModel(messages=iter(["A red circle [1].", "Again [2]."])))
        pieces = [p async for p in chain.astream("a red circle")]
        events = [e async for e in chain.astream_events("a red circle", version="v2")]
        return pieces, events

    pieces, events = asyncio.run(run())
    assert sum(pieces[1:], pieces[0]).answer == "A red circle [1]."
    kinds = [e["event"] for e in events]
    assert kinds[0] == "on_chain_start"
    assert {"on_retriever_start", "on_retriever_end", "on_chat_model_stream", "on_chain_stream"} <= set(kinds)
    tokens = "".join(str(e["data"]["chunk"].content) for e in events if e["event"] == "on_chat_model_stream")
    assert tokens == "Again [2]."
    ends = [e for e in events if e["event"] == "on_chain_end" and e["name"] == "mmrag_answer"]
    assert ends[0]["data"]["output"].answer == "Again [2]."


def test_ainvoke_and_no_llm(kb: KnowledgeBase) -> None:
    answer = asyncio.run(answer_chain(kb, None).ainvoke("a red circle"))
    assert not answer.llm_used
    assert answer.answer.startswith(NO_LLM_NOTE)


def test_input_options_override_and_unknown_ones_raise(kb: KnowledgeBase) -> None:
    chain = answer_chain(kb, None, k=6)
    only_images = chain.invoke({"question": "a red circle", "k": 2, "modality": "image"})
    assert len(only_images.sources) <= 2
    assert {s.modality for s in only_images.sources} == {"image"}
    with pytest.raises(ConfigError, match="unknown retriever options: colour"):
        chain.invoke({"question": "a red circle", "colour": "red"})
    with pytest.raises(ConfigError, match="question"):
        chain.invoke({"k": 2})
    with pytest.raises(ConfigError, match="empty"):
        chain.invoke("  ")


def test_wrappers_take_a_config_and_failures_stay_typed(kb: KnowledgeBase) -> None:
    runs = Runs()
    answer_question(kb, "a red circle", ScriptedChatModel(responses=[AIMessage("ok")]), config={"callbacks": [runs]})
    assert {r["kind"] for r in runs.runs.values()} == {"chain", "retriever", "llm"}

    class Broken(ScriptedChatModel):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("provider unreachable")

    with pytest.raises(LLMError, match="provider unreachable"):
        AnswerChain(retriever=kb.as_retriever(), llm=Broken(responses=[])).invoke("a red circle")
