"""CLI commands that answer questions: ``ask`` (one question) and ``chat`` (a terminal loop)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mmrag.cli.common import ChromaUrlOpt, DbOpt, JsonFlag, cli, emit, read_stdin_if_dash, settings_from
from mmrag.defaults import DEFAULT_K, DEFAULT_MAX_STEPS, DEFAULT_TIMEOUT_S
from mmrag.errors import MmragError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from mmrag.langchain.answer import Answer
    from mmrag.langchain.knowledge_base import KnowledgeBase

EXIT_WORDS = frozenset({"exit", "quit", ":q"})

LlmOpt = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="Chat model as provider:model, e.g. openai:gpt-4o-mini or ollama:llava. Env MMRAG_LLM. "
        "Without one, answers are retrieval-only.",
    ),
]
KOpt = Annotated[int, typer.Option("-k", help="How many documents (images and passages) to retrieve.")]
VisionOpt = Annotated[
    bool | None,
    typer.Option(
        "--vision/--no-vision", help="Show the retrieved images to the model (default: if it accepts images)."
    ),
]
AgentFlag = Annotated[
    bool, typer.Option("--agent", help="Let the model use mmrag's tools (search, classify, match); needs --llm.")
]
MaxStepsOpt = Annotated[int, typer.Option("--max-steps", help="With --agent: model calls per question.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="With --agent: seconds per question.")]


class _Session:
    """What ask and chat share: the knowledge base, the chat model (if any) and, with --agent, the agent."""

    def __init__(
        self,
        ctx: typer.Context,
        *,
        llm: str | None,
        db: Path | None,
        chroma_url: str | None,
        agent: bool,
        max_steps: int,
        timeout: float,
        memory: bool = False,
        one_query: bool = False,
    ) -> None:
        from mmrag.factory import open_knowledge_base
        from mmrag.langchain.chat_models import load_chat_model

        settings = settings_from(ctx, one_query=one_query, db=db, chroma_url=chroma_url, llm=llm)
        if agent and not settings.llm:
            msg = "--agent needs a chat model: give --llm provider:model (or set MMRAG_LLM)"
            raise typer.BadParameter(msg)
        self.llm_name = settings.llm
        self.llm: BaseChatModel | None = load_chat_model(settings.llm) if settings.llm else None
        self.kb: KnowledgeBase = open_knowledge_base(settings, create=False)
        self.agent: Any = None
        self.thread_id = "chat" if memory else None
        if agent and self.llm is not None:
            from mmrag.langchain.agent import conversation_memory
            from mmrag.langchain.agent_chain import agent_chain

            checkpointer = conversation_memory() if memory else None
            self.agent = agent_chain(
                self.kb, self.llm, max_steps=max_steps, timeout_s=timeout, checkpointer=checkpointer
            )

    def answer(self, question: str, *, k: int, vision: bool | None, stream: bool) -> Answer:
        """Answer one question; with ``stream``, print the answer's text as it comes."""
        from mmrag.langchain.answer import stream_answer

        if self.agent is not None:
            answer: Answer = self.agent.invoke({"question": question, "thread_id": self.thread_id})
            if stream:
                typer.echo(answer.answer)
            return answer
        answer_stream = stream_answer(self.kb, question, self.llm, k=k, vision=vision)
        if not stream:
            return answer_stream.answer
        for chunk in answer_stream:
            typer.echo(chunk, nl=False)
        typer.echo()
        return answer_stream.answer


def _print_details(answer: Answer) -> None:
    """Images (paths) and sources after a model's answer; the retrieval-only answer already lists them."""
    if answer.llm_used:
        if answer.images:
            typer.echo("\nImages:")
            for image in answer.images:
                caption = f"  ({image.caption})" if image.caption else ""
                typer.echo(f"  {image.score:.3f}  {image.source}{caption}")
        if answer.sources:
            typer.echo("\nSources:")
            for source in answer.sources:
                mark = "*" if source.cited else " "
                typer.echo(f" {mark}[{source.n}] {source.score:.3f}  {source.modality:5}  {source.where}")
    for warning in answer.warnings:
        typer.echo(f"warning: {warning}", err=True)


@cli.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question; - reads it from stdin.")],
    llm: LlmOpt = None,
    k: KOpt = DEFAULT_K,
    vision: VisionOpt = None,
    agent: AgentFlag = False,
    max_steps: MaxStepsOpt = DEFAULT_MAX_STEPS,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question from the knowledge base, with the paths of the images to show.

    With --llm, a cited answer; without, the best images and passages (retrieval only).
    """
    question = read_stdin_if_dash(question, "question")
    session = _Session(
        ctx, llm=llm, db=db, chroma_url=chroma_url, agent=agent, max_steps=max_steps, timeout=timeout, one_query=True
    )
    answer = session.answer(question, k=k, vision=vision, stream=not as_json)
    if as_json:
        emit(answer.to_json())
        return
    _print_details(answer)


@cli.command()
def chat(
    ctx: typer.Context,
    llm: LlmOpt = None,
    k: KOpt = DEFAULT_K,
    vision: VisionOpt = None,
    agent: AgentFlag = False,
    max_steps: MaxStepsOpt = DEFAULT_MAX_STEPS,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    db: DbOpt = None,
    chroma_url: ChromaUrlOpt = None,
) -> None:
    """Ask questions in a terminal loop until end of input (Ctrl-D) or 'exit'.

    Each answer prints its image paths. With --agent the conversation is remembered; otherwise each question
    stands alone.
    """
    session = _Session(
        ctx, llm=llm, db=db, chroma_url=chroma_url, agent=agent, max_steps=max_steps, timeout=timeout, memory=True
    )
    mode = f"chat model {session.llm_name}" if session.llm is not None else "no LLM configured: retrieval only"
    typer.echo(f"mmrag chat over {session.kb.location} ({mode}). Type 'exit' or press Ctrl-D to leave.")
    while True:
        try:
            line = input("> ")
        except EOFError:
            typer.echo()
            break
        question = line.strip()
        if not question:
            continue
        if question.lower() in EXIT_WORDS:
            break
        try:
            _print_details(session.answer(question, k=k, vision=vision, stream=True))
        except MmragError as e:  # one failed question does not end the conversation
            typer.echo(f"error: {e}", err=True)
        typer.echo()
