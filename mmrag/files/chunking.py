"""Split text into chunks that CLIP's text tower reads whole, with overlap.

CLIP reads a fixed number of tokens (77 for ViT-B-32, start and end included). A chunk is measured in
the model's own tokens, so nothing past the context is silently truncated. Splitting prefers paragraph,
then line, then sentence, then word boundaries (LangChain's ``RecursiveCharacterTextSplitter``), and
neighbouring chunks share ``overlap`` tokens so a phrase cut at a boundary is still found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SEPARATORS = ["\n\n", "\n", "。", "！", "？", ". ", "! ", "? ", "；", "; ", "，", ", ", " ", ""]
"""Boundaries tried in order; the Chinese full stop and comma come before the space."""


@dataclass(frozen=True)
class Chunk:
    """One piece of a text document: its text, its position among the chunks, and where it starts."""

    text: str
    index: int
    start: int


def chunk_text(
    text: str,
    *,
    token_count: Callable[[str], int],
    max_tokens: int,
    overlap: int = 12,
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_tokens`` tokens as ``token_count`` counts them.

    Args:
        text: the document.
        token_count: counts a string's tokens, start and end tokens included (``ClipModel.token_count``).
        max_tokens: the model's context length.
        overlap: tokens shared between neighbouring chunks.

    Returns:
        The non-empty chunks in order, with their character offsets in ``text``.
    """
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    text = text.strip()
    if not text:
        return []
    budget = max_tokens - 2  # the start and end tokens are added once per chunk, not once per piece

    def content_tokens(piece: str) -> int:
        return max(0, token_count(piece) - 2)

    splitter = RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        chunk_size=budget,
        chunk_overlap=min(overlap, budget // 4),
        length_function=content_tokens,
        keep_separator="end",
        strip_whitespace=True,
    )
    chunks: list[Chunk] = []
    cursor = 0
    for piece in splitter.split_text(text):
        if not piece:
            continue
        found = text.find(piece, cursor)
        start = found if found >= 0 else text.find(piece)
        chunks.append(Chunk(piece, len(chunks), start))
        cursor = max(cursor, start + 1)
    return chunks
