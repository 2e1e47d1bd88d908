"""The agent as the answer chain: the same Runnable, input and :class:`~mmrag.langchain.answer.Answer`, with the
tool-calling agent in place of the single prompt → model step.

``mmrag ask --agent`` and ``mmrag chat --agent`` run it, so what a tracer sees, the callbacks, ``batch``,
``astream`` and ``astream_events``, the tags and metadata, and the answer's images and sources are those of
:class:`~mmrag.langchain.answer.AnswerChain`; the agent's model and tool runs are children of the chain's
run (``mmrag-answer``), with the tag ``mmrag-agent`` beside ``mmrag``.

.. code-block:: python

    from mmrag import open_knowledge_base
    from mmrag.langchain.agent_chain import agent_chain

    chain = agent_chain(open_knowledge_base(db="demo-kb"), "openai:gpt-4o-mini", max_steps=6)
    answer = chain.invoke("Which images show a red circle? Classify the first one.")
    chain.invoke({"question": "and the blue one?", "thread_id": "chat-1"})  # with checkpointer=...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig, ensure_config

from mmrag.errors import ConfigError, MmragError
from mmrag.langchain.agent import agent_error, answer_from_messages, build_agent
from mmrag.langchain.answer import Answer, AnswerChain, AnswerInput
from mmrag.langchain.chat_models import load_chat_model
from mmrag.langchain.knowledge_base import KnowledgeBase

AGENT_TAG = "mmrag-agent"


class AgentAnswerChain(AnswerChain):
    """:class:`~mmrag.langchain.answer.AnswerChain` whose answer comes from a tool-calling agent.

    The input is a question, or a dict with ``question`` and optionally ``thread_id`` (continue that
    conversation; the agent needs a checkpointer). Retrieval options (``k``, ``modality``…) are the agent's to
    choose through its tools, so they are refused here.

    Raises (while running):
        ConfigError: an empty question or an option other than ``thread_id``.
        LLMError: the chat model or the agent failed.
    """

    agent: Any

    def _configured(self, config: RunnableConfig | None) -> RunnableConfig:
        configured = super()._configured(config)
        tags = list(configured.get("tags") or [])
        return {**configured, "tags": [*tags, AGENT_TAG] if AGENT_TAG not in tags else tags}

    def _agent_input(self, input: AnswerInput, config: RunnableConfig) -> tuple[str, dict[str, Any], RunnableConfig]:
        options = dict(input) if isinstance(input, Mapping) else {}
        thread_id = options.pop("thread_id", None)
        unknown = sorted(set(options) - {"question"})
        if unknown:
            msg = f"the agent chooses its own retrieval: the agent chain takes question and thread_id, got {unknown}"
            raise ConfigError(msg)
        question, _, _ = self._parse(options if isinstance(input, Mapping) else input)  # checks type and question
        run_config = ensure_config(config)
        if thread_id is not None:
            configurable = {**(run_config.get("configurable") or {}), "thread_id": str(thread_id)}
            run_config = {**run_config, "configurable": configurable}
        return question, {"messages": [HumanMessage(question)]}, run_config

    def _pieces(self, input: AnswerInput, config: RunnableConfig) -> Iterator[Answer]:
        question, state, run_config = self._agent_input(input, config)
        try:
            result = self.agent.invoke(state, run_config)
        except MmragError:
            raise
        except Exception as e:  # the provider's errors, and LangGraph's recursion backstop
            raise agent_error(e) from e
        yield answer_from_messages(question, result["messages"])

    async def _apieces(self, input: AnswerInput, config: RunnableConfig) -> AsyncIterator[Answer]:
        question, state, run_config = self._agent_input(input, config)
        try:
            result = await self.agent.ainvoke(state, run_config)
        except MmragError:
            raise
        except Exception as e:
            raise agent_error(e) from e
        yield answer_from_messages(question, result["messages"])


def agent_chain(kb: KnowledgeBase, llm: str | BaseChatModel, **agent_options: Any) -> AgentAnswerChain:
    """The answer chain over ``kb`` with the tool-calling agent of :func:`~mmrag.langchain.agent.build_agent`
    (``agent_options`` are its keyword arguments: ``max_steps``, ``timeout_s``, ``checkpointer``…).

    Raises:
        ConfigError: a limit out of range.
        LLMUnavailableError: ``llm`` names a chat model that can't be created.
    """
    model = load_chat_model(llm) if isinstance(llm, str) else llm
    agent = build_agent(kb, model, **agent_options)
    return AgentAnswerChain(retriever=kb.as_retriever(), llm=model, agent=agent, location=kb.location)
