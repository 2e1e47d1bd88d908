"""Answers to questions as a LangChain Runnable: retrieve images and text, then a chat model writes a cited answer.

:class:`AnswerChain` is an LCEL ``Runnable`` (``invoke``, ``stream``, ``batch``, ``ainvoke``, ``astream``,
``astream_events``, ``with_config``…). One call is one parent run (``mmrag_answer``, tagged ``mmrag``, with the
knowledge base, ``k`` and the chat model in its metadata) holding the retriever run, the prompt run
(``mmrag_prompt``) and the chat model's run, so a tracer or callback handler sees the whole answer.

**With a chat model** (any LangChain ``BaseChatModel``) the question retrieves up to ``k`` mixed documents
(calibrated, see :mod:`mmrag.search.searcher`), which become numbered sources in the prompt
(:mod:`mmrag.langchain.answer_prompt`); a vision model also gets the retrieved images.
**Without one**, the answer is retrieval-only: it says plainly that no LLM was used and lists the best images
and passages with their scores and sources.

The chain's output is an :class:`Answer`. Streamed, it comes in pieces that add up (``+``) to the whole: first
the images and sources (before any text), then the text as the model writes it, then the sources marked with
what the answer cites. :func:`answer_question` and :func:`stream_answer` are thin wrappers for plain Python.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.runnables import RunnableConfig, RunnableLambda, RunnableSerializable, ensure_config
from pydantic import ConfigDict

from mmrag.defaults import DEFAULT_K, MAX_K
from mmrag.errors import ConfigError, LLMError, MmragError
from mmrag.kb.records import IMAGE, TEXT, located, page_of
from mmrag.langchain.answer_prompt import (
    MAX_PROMPT_IMAGE_SIDE,
    MAX_PROMPT_IMAGES,
    NO_LLM_NOTE,
    NOTHING_FOUND,
    SYSTEM_PROMPT,
    build_messages,
    cited_numbers,
    format_sources,
    prompt_image_url,
    retrieval_only_text,
    snippet,
)
from mmrag.langchain.chat_models import model_name, supports_vision
from mmrag.langchain.retriever import MultimodalRetriever
from mmrag.search.hits import Hit, SearchResult

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from mmrag.langchain.knowledge_base import KnowledgeBase

__all__ = [
    "MAX_PROMPT_IMAGES",
    "MAX_PROMPT_IMAGE_SIDE",
    "NOTHING_FOUND",
    "NO_LLM_NOTE",
    "SYSTEM_PROMPT",
    "Answer",
    "AnswerChain",
    "AnswerImage",
    "AnswerSource",
    "AnswerStream",
    "answer_chain",
    "answer_question",
    "build_messages",
    "cited_numbers",
    "format_sources",
    "prompt_image_url",
    "retrieval_only_text",
    "stream_answer",
]

RUN_NAME = "mmrag_answer"
PROMPT_RUN_NAME = "mmrag_prompt"
TAGS = ("mmrag", "mmrag:answer")
"""Tags of the answer's parent run (inherited by the retriever, prompt and chat model runs under it)."""
AnswerInput = str | Mapping[str, Any]
"""A question, or ``{"question": …, **retriever options}`` (``k``, ``modality``, ``threshold``, ``where``…,
and ``vision``)."""


@dataclass(frozen=True)
class AnswerImage:
    """An image to show with the answer."""

    id: str
    source: str
    score: float
    caption: str = ""
    thumbnail: str = ""
    """A small JPEG data URI (not in :meth:`to_json`)."""
    page: int | None = None
    """The 0-based page of a PDF figure or page image (people see ``page + 1``)."""

    def to_json(self) -> dict[str, Any]:
        data = {"source": self.source, "score": round(self.score, 6), "id": self.id, "caption": self.caption}
        return data | ({"page": self.page} if self.page is not None else {})


@dataclass(frozen=True)
class AnswerSource:
    """A numbered source of the answer: a passage or an image (``[n]`` in the answer text)."""

    n: int
    id: str
    modality: str
    source: str
    score: float
    snippet: str
    cited: bool = False
    page: int | None = None
    """The 0-based page of a PDF's chunk, figure or page image (people see ``page + 1``)."""

    @property
    def where(self) -> str:
        """The source with its page: ``/docs/paper.pdf, page 4`` (``deck.pptx, slide 2``)."""
        return located(self.source, self.page)

    def to_json(self) -> dict[str, Any]:
        data = {
            "n": self.n,
            "source": self.source,
            "score": round(self.score, 6),
            "modality": self.modality,
            "id": self.id,
            "snippet": self.snippet,
            "cited": self.cited,
        }
        return data | ({"page": self.page} if self.page is not None else {})


@dataclass
class Answer:
    """An answer with the images to show and its sources.

    Attributes:
        answer: the text: the model's answer, or the retrieval-only summary.
        images: the retrieved images, best first.
        sources: every retrieved document, numbered as in the prompt; ``cited`` marks those the answer cites.
        llm_used: whether a chat model wrote ``answer``.
        model: the chat model's name, when one was used.
        warnings: e.g. a query language the CLIP model can't read, or an image that couldn't be attached.
    """

    question: str
    answer: str
    images: list[AnswerImage] = field(default_factory=list)
    sources: list[AnswerSource] = field(default_factory=list)
    llm_used: bool = False
    model: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "images": [image.to_json() for image in self.images],
            "sources": [source.to_json() for source in self.sources],
            "llm_used": self.llm_used,
            "model": self.model,
            "warnings": list(self.warnings),
        }

    def __add__(self, other: Answer) -> Answer:
        """Join two pieces of a streamed answer (how LangChain aggregates :meth:`AnswerChain.stream`): the text
        is concatenated; images, sources, model and warnings are taken from whichever piece has them (a later
        piece's sources, which mark what the answer cites, win)."""
        return Answer(
            self.question or other.question,
            self.answer + other.answer,
            self.images or other.images,
            other.sources or self.sources,
            self.llm_used or other.llm_used,
            other.model or self.model,
            self.warnings + [w for w in other.warnings if w not in self.warnings],
        )


class AnswerChain(RunnableSerializable[AnswerInput, Answer]):
    """The answer as a LangChain Runnable: retriever → prompt → chat model, under one parent run.

    Setup:
        A knowledge base (``mmrag index FOLDER``) and, optionally, a chat model
        (:func:`~mmrag.langchain.chat_models.load_chat_model`).

    Instantiate:
        .. code-block:: python

            from mmrag import answer_chain, open_knowledge_base
            from mmrag.langchain.chat_models import load_chat_model

            kb = open_knowledge_base(db="demo-kb")
            chain = answer_chain(kb, load_chat_model("openai:gpt-4o-mini"), k=6)
            chain = answer_chain(kb, None)  # retrieval-only answers

    Use:
        .. code-block:: python

            answer = chain.invoke("what is red?")          # an Answer
            answer.answer, [i.source for i in answer.images]
            for piece in chain.stream("what is red?"):     # Answer pieces; they add up to the whole
                print(piece.answer, end="")
            chain.batch(["a red circle", "a blue square"])
            chain.invoke({"question": "a red circle", "k": 3, "modality": "image"})
            async for event in chain.astream_events("a red circle", version="v2"): ...

    Args:
        retriever: the retriever (its options are the defaults; the input's options override them).
        llm: a LangChain chat model, or None for retrieval-only answers.
        vision: attach the retrieved images to the prompt; None decides by
            :func:`~mmrag.langchain.chat_models.supports_vision`.
        location: the knowledge base's location, for the run's metadata.

    Raises (while running):
        ConfigError: an empty question, a bad ``k`` or an unknown option.
        EmptyQueryError: the question has nothing to search for.
        LLMError: the chat model failed.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: MultimodalRetriever
    llm: Any = None
    vision: bool | None = None
    location: str = ""

    @property
    def _chat(self) -> BaseChatModel | None:
        return self.llm  # type: ignore[no-any-return]

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        return super().get_name(suffix, name=name or RUN_NAME)

    # --- the parent run --------------------------------------------------------------------------

    def _configured(self, config: RunnableConfig | None) -> RunnableConfig:
        config = ensure_config(config)
        metadata = {
            "mmrag_kb": self.location,
            "mmrag_k": self.retriever.k,
            "mmrag_llm": model_name(self._chat) if self._chat is not None else None,
            **(config.get("metadata") or {}),
        }
        tags = [*TAGS, *[t for t in config.get("tags") or [] if t not in TAGS]]
        return {**config, "tags": tags, "metadata": metadata}

    def invoke(self, input: AnswerInput, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        return self._call_with_config(self._whole, input, self._configured(config), run_type="chain")

    async def ainvoke(self, input: AnswerInput, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        return await self._acall_with_config(self._awhole, input, self._configured(config), run_type="chain")

    def transform(
        self, input: Iterator[AnswerInput], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Answer]:
        yield from self._transform_stream_with_config(input, self._pieces_of, self._configured(config))

    def stream(self, input: AnswerInput, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Answer]:
        yield from self.transform(iter([input]), config, **kwargs)

    async def atransform(
        self, input: AsyncIterator[AnswerInput], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Answer]:
        async for piece in self._atransform_stream_with_config(input, self._apieces_of, self._configured(config)):
            yield piece

    async def astream(
        self, input: AnswerInput, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Answer]:
        async def one() -> AsyncIterator[AnswerInput]:
            yield input

        async for piece in self.atransform(one(), config, **kwargs):
            yield piece

    # --- the steps -------------------------------------------------------------------------------

    def _whole(self, input: AnswerInput, run_manager: CallbackManagerForChainRun, config: RunnableConfig) -> Answer:
        return _joined(list(self._pieces(input, config)))

    async def _awhole(
        self, input: AnswerInput, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> Answer:
        return _joined([piece async for piece in self._apieces(input, config)])

    def _pieces_of(
        self, inputs: Iterator[AnswerInput], run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> Iterator[Answer]:
        for input in inputs:
            yield from self._pieces(input, config)

    async def _apieces_of(
        self, inputs: AsyncIterator[AnswerInput], run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> AsyncIterator[Answer]:
        async for input in inputs:
            async for piece in self._apieces(input, config):
                yield piece

    def _parse(self, input: AnswerInput) -> tuple[str, dict[str, Any], bool | None]:
        if isinstance(input, str):
            question, options = input, {}
        elif isinstance(input, Mapping):
            options = dict(input)
            question = options.pop("question", None)
            if not isinstance(question, str):
                msg = f"the answer chain's input needs a 'question' string, got {dict(input)!r}"
                raise ConfigError(msg)
        else:
            msg = f"the answer chain takes a question or a dict with 'question', got {type(input).__name__}"
            raise ConfigError(msg)
        question = question.strip()
        if not question:
            msg = "the question is empty"
            raise ConfigError(msg)
        vision = options.pop("vision", self.vision)
        k = options.get("k", self.retriever.k)
        if not isinstance(k, int) or not 1 <= k <= MAX_K:
            msg = f"k (documents to retrieve) must be between 1 and {MAX_K}, got {k}"
            raise ConfigError(msg)
        return question, options, vision

    def _first(self, question: str, result: SearchResult) -> Answer:
        hits = result.hits
        return Answer(
            question,
            "",
            [_image(h) for h in hits if h.modality == IMAGE],
            [_source(n, h) for n, h in enumerate(hits, 1)],
            warnings=list(result.warnings),
        )

    def _prompt(
        self, question: str, hits: Sequence[Hit], vision: bool | None, warnings: list[str]
    ) -> RunnableLambda[str, list[BaseMessage]]:
        llm = self._chat
        assert llm is not None
        see = supports_vision(llm) if vision is None else vision
        return RunnableLambda(
            lambda _: build_messages(question, hits, vision=see, warnings=warnings), name=PROMPT_RUN_NAME
        )

    def _pieces(self, input: AnswerInput, config: RunnableConfig) -> Iterator[Answer]:
        question, options, vision = self._parse(input)
        found: list[SearchResult] = []
        self.retriever.invoke(question, config, on_result=found.append, **options)
        first = self._first(question, found[0])
        yield first
        hits = found[0].hits
        llm = self._chat
        if llm is None or not hits:
            yield Answer(question, retrieval_only_text(hits) if llm is None else NOTHING_FOUND)
            return
        warnings: list[str] = []
        messages = self._prompt(question, hits, vision, warnings).invoke(question, config)
        parts: list[str] = []
        try:
            for chunk in llm.stream(messages, config):
                text = str(chunk.text)
                if text:
                    parts.append(text)
                    yield Answer(question, text)
        except MmragError:
            raise
        except Exception as e:  # any provider's failure (network, auth, rate limit) becomes one typed error
            raise _llm_error(llm, e) from e
        yield self._last(first, "".join(parts), warnings)

    async def _apieces(self, input: AnswerInput, config: RunnableConfig) -> AsyncIterator[Answer]:
        question, options, vision = self._parse(input)
        found: list[SearchResult] = []
        await self.retriever.ainvoke(question, config, on_result=found.append, **options)
        first = self._first(question, found[0])
        yield first
        hits = found[0].hits
        llm = self._chat
        if llm is None or not hits:
            yield Answer(question, retrieval_only_text(hits) if llm is None else NOTHING_FOUND)
            return
        warnings: list[str] = []
        messages = await self._prompt(question, hits, vision, warnings).ainvoke(question, config)
        parts: list[str] = []
        try:
            async for chunk in llm.astream(messages, config):
                text = str(chunk.text)
                if text:
                    parts.append(text)
                    yield Answer(question, text)
        except MmragError:
            raise
        except Exception as e:
            raise _llm_error(llm, e) from e
        yield self._last(first, "".join(parts), warnings)

    def _last(self, first: Answer, text: str, warnings: list[str]) -> Answer:
        """The closing piece: the sources marked with what the answer cites, the model, late warnings."""
        cited = cited_numbers(text)
        sources = [
            AnswerSource(s.n, s.id, s.modality, s.source, s.score, s.snippet, s.n in cited, s.page)
            for s in first.sources
        ]
        return Answer(first.question, "", [], sources, True, model_name(self._chat), warnings)  # type: ignore[arg-type]


def _joined(pieces: Sequence[Answer]) -> Answer:
    whole = pieces[0]
    for piece in pieces[1:]:
        whole = whole + piece
    whole.answer = whole.answer.strip()
    return whole


def _llm_error(llm: BaseChatModel, e: Exception) -> LLMError:
    return LLMError(f"the chat model {model_name(llm)} failed: {type(e).__name__}: {e}")


def answer_chain(
    kb: KnowledgeBase, llm: BaseChatModel | None, *, vision: bool | None = None, **retrieval: Any
) -> AnswerChain:
    """The answer chain over ``kb``: see :class:`AnswerChain`.

    Args:
        kb: the knowledge base.
        llm: a LangChain chat model, or None for retrieval-only answers.
        vision: attach the retrieved images to the prompt; None decides by :func:`supports_vision`.
        retrieval: the retriever's options (``k``, ``modality``, ``threshold``, ``where``, ``mmr``…).

    Raises:
        ConfigError: an unknown retriever option.
    """
    return AnswerChain(retriever=kb.as_retriever(**retrieval), llm=llm, vision=vision, location=kb.location)


class AnswerStream:
    """An answer being written: ``images`` and ``sources`` are known at once; iterate for the text chunks.

    .. code-block:: python

        stream = stream_answer(kb, "what is red?", llm)
        show(stream.images)
        for chunk in stream:
            sys.stdout.write(chunk)
        stream.answer  # the complete Answer (waits for the rest if iteration stopped early)

    Raises (while iterating):
        LLMError: the chat model failed.
    """

    def __init__(self, first: Answer, rest: Iterator[Answer]) -> None:
        self.question = first.question
        self.images = first.images
        self.sources = first.sources
        self.warnings = first.warnings
        self._pieces = [first]
        self._rest = rest
        self._done = False
        self._iterator: Iterator[str] | None = None

    def __iter__(self) -> Iterator[str]:
        if self._iterator is None:
            self._iterator = self._texts()
        return self._iterator

    def _texts(self) -> Iterator[str]:
        for piece in self._rest:
            self._pieces.append(piece)
            if piece.answer:
                yield piece.answer
        self._done = True

    @property
    def model(self) -> str | None:
        return self.answer.model

    @property
    def answer(self) -> Answer:
        """The complete answer (consumes whatever text is still to come)."""
        for _ in self:
            pass
        if not self._done:  # the stream failed earlier, and its error was raised then
            msg = f"the answer to {self.question!r} was not completed (the chat model failed)"
            raise LLMError(msg)
        return _joined(self._pieces)


def stream_answer(
    kb: KnowledgeBase,
    question: str,
    llm: BaseChatModel | None,
    *,
    k: int = DEFAULT_K,
    vision: bool | None = None,
    config: RunnableConfig | None = None,
    **retrieval: Any,
) -> AnswerStream:
    """Retrieve for ``question`` now; the answer's text comes as the returned stream is iterated.

    A thin wrapper over :meth:`AnswerChain.stream`.

    Args:
        kb: the knowledge base.
        question: the question, in any language the CLIP model reads.
        llm: a LangChain chat model, or None for a retrieval-only answer.
        k: how many documents (images and passages together) to retrieve, at most.
        vision: attach the retrieved images to the prompt; None decides by :func:`supports_vision`.
        config: a LangChain ``RunnableConfig`` (callbacks, tags, metadata) for the chain's run.
        retrieval: more retriever options (``modality``, ``threshold``, ``where``, ``mmr``…).

    Raises:
        ConfigError: an empty question or a bad ``k``.
        EmptyQueryError: the question has nothing to search for.
    """
    chain = answer_chain(kb, llm, vision=vision)
    pieces = iter(chain.stream({"question": question, "k": k, **retrieval}, config))
    return AnswerStream(next(pieces), pieces)


def answer_question(
    kb: KnowledgeBase,
    question: str,
    llm: BaseChatModel | None,
    *,
    k: int = DEFAULT_K,
    vision: bool | None = None,
    config: RunnableConfig | None = None,
) -> Answer:
    """Answer ``question`` from the knowledge base; a thin wrapper over :meth:`AnswerChain.invoke` (see
    :func:`stream_answer` for the arguments).

    Raises:
        ConfigError: an empty question or a bad ``k``.
        LLMError: the chat model failed.
    """
    return answer_chain(kb, llm, vision=vision).invoke({"question": question, "k": k}, config)


def _image(hit: Hit) -> AnswerImage:
    return AnswerImage(hit.id, hit.source, hit.relevance, hit.caption, hit.document, page_of(hit.metadata))


def _source(n: int, hit: Hit) -> AnswerSource:
    matched = str(hit.metadata.get("matched", ""))
    text = snippet(hit.document) if hit.modality == TEXT else snippet(matched or hit.caption or Path(hit.source).name)
    return AnswerSource(n, hit.id, hit.modality, hit.source, hit.relevance, text, page=page_of(hit.metadata))
