"""Chat models: create one from ``"provider:model"``, and tell whether it accepts images.

Kept apart from the agent, so that answering without ``--agent`` never imports LangGraph.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from mmrag.errors import LLMUnavailableError

VISION_HINTS = (
    "gpt-4o",
    "gpt-4.1",
    "gpt-4-turbo",
    "gpt-5",
    "claude-3",
    "claude-sonnet-4",
    "claude-opus-4",
    "claude-haiku-4",
    "gemini",
    "llava",
    "vision",
    "pixtral",
    "moondream",
    "minicpm-v",
    "qwen2.5vl",
    "qwen2.5-vl",
    "qwen-vl",
    "gemma3",
    "llama4",
)
"""Model-name fragments taken to mean "accepts images" when the model has no profile saying either way."""


def load_chat_model(spec: str, **kwargs: Any) -> BaseChatModel:
    """The chat model ``spec`` names (``"provider:model"``), through LangChain's ``init_chat_model``.

    Raises:
        LLMUnavailableError: an unknown provider, its integration package not installed, or missing
            credentials; the message says which and how to fix it.
    """
    spec = spec.strip()
    if not spec:
        msg = "the chat model is empty; give --llm provider:model (or MMRAG_LLM), e.g. openai:gpt-4o-mini"
        raise LLMUnavailableError(msg)
    from langchain.chat_models import init_chat_model

    try:
        chat = init_chat_model(spec, **kwargs)
    except ImportError as e:
        msg = f"the chat model {spec!r} (--llm / MMRAG_LLM) needs its LangChain integration package: {e}"
        raise LLMUnavailableError(msg) from e
    except Exception as e:  # providers raise ValueError, their own errors for missing keys, etc.
        msg = (
            f"cannot create the chat model {spec!r} (--llm / MMRAG_LLM): {e}. Use provider:model, e.g. "
            "openai:gpt-4o-mini, anthropic:claude-sonnet-4-5 or ollama:llava, and set the provider's API key"
        )
        raise LLMUnavailableError(msg) from e
    if not isinstance(chat, BaseChatModel):  # a configurable model: not something mmrag can drive
        msg = f"{spec!r} did not give a chat model (got {type(chat).__name__})"
        raise LLMUnavailableError(msg)
    return chat


def supports_vision(llm: BaseChatModel) -> bool:
    """Whether the chat model accepts images: its LangChain profile's ``image_inputs`` when it has one,
    else a guess from its model name (:data:`VISION_HINTS`, e.g. gpt-4o, claude-3…, llava, gemini)."""
    profile = getattr(llm, "profile", None)
    if isinstance(profile, dict) and "image_inputs" in profile:
        return bool(profile["image_inputs"])
    name = model_name(llm).lower()
    return any(hint in name for hint in VISION_HINTS)


def model_name(llm: BaseChatModel) -> str:
    """The chat model's name for messages (``model_name``, ``model`` or ``model_id``, else its type)."""
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(llm, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__
