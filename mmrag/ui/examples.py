"""Example questions for an empty chat, drawn from what the knowledge base holds.

Captions of indexed images come first (``a red circle`` → ``Show me a red circle``), picked evenly across
the sorted list so that the examples differ; then, for a knowledge base without captions, the names of its
files. Extend :func:`example_questions` (or replace it) to draw examples another way.
"""

from __future__ import annotations

import re
from pathlib import Path

from mmrag.kb.records import IMAGE, MODALITIES
from mmrag.langchain.knowledge_base import KnowledgeBase

MAX_EXAMPLE_CHARS = 60
"""Longer captions make poor example questions."""


def example_questions(kb: KnowledgeBase, n: int = 3) -> list[str]:
    """Up to ``n`` questions to offer in an empty chat (none for an empty knowledge base)."""
    captions = sorted(
        {
            " ".join(str(meta.get("caption") or "").split())
            for meta in kb.store.metadatas(IMAGE).values()
            if 0 < len(str(meta.get("caption") or "").strip()) <= MAX_EXAMPLE_CHARS
        }
    )
    topics = captions or sorted({_topic(str(m.get("source", ""))) for mod in MODALITIES for m in _metas(kb, mod)})
    return [f"Show me {topic}" for topic in spread([t for t in topics if t], n)]


def spread(items: list[str], n: int) -> list[str]:
    """``n`` items taken evenly across ``items`` (all of them when there are no more than ``n``)."""
    if len(items) <= n:
        return list(items)
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _metas(kb: KnowledgeBase, modality: str) -> list[dict[str, object]]:
    return [dict(m) for m in kb.store.metadatas(modality).values()]


def _topic(source: str) -> str:
    """A file name as words: ``red_circle_01.png`` → ``red circle``."""
    words = re.sub(r"[_\-.]+", " ", Path(source).stem)
    return " ".join(w for w in words.split() if not w.isdigit())[:MAX_EXAMPLE_CHARS]
