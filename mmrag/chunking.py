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
    splitter = RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        chunk_size=max_tokens,
        chunk_overlap=min(overlap, max_tokens // 4),
        length_function=token_count,
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=True,
    )
    chunks: list[Chunk] = []
    for doc in splitter.create_documents([text]):
        piece = doc.page_content
        if piece:
            chunks.append(Chunk(piece, len(chunks), int(doc.metadata.get("start_index", -1))))
    return chunks
