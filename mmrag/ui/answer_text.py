"""How the page writes an answer: short file names linked to its image grid, and an honest note on the LLM.

The library's retrieval-only answer (:func:`mmrag.langchain.answer.retrieval_only_text`) is plain text for a
terminal, with absolute paths. The page shows the same images again in a grid, so here the answer names each
file by its short name, links it to its place in the grid (:func:`image_anchor`), and says why no LLM was used:
none configured, or a configured one that could not be loaded. A chat model's own text keeps its words; its
citations of images become links to the grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mmrag.kb.records import IMAGE, TEXT
from mmrag.langchain.answer import NOTHING_FOUND, Answer, AnswerSource

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@dataclass(frozen=True)
class LLMStatus:
    """The chat model the sidebar asked for, and why it is not in use, if it isn't.

    ``spec`` is None when none is configured; ``problem`` is the reason a configured one could not be loaded.
    """

    spec: str | None = None
    problem: str | None = None

    @property
    def missing(self) -> bool:
        """A chat model is configured but could not be loaded."""
        return self.spec is not None and self.problem is not None

    def retrieval_only_note(self) -> str:
        """The first line of a retrieval-only answer."""
        if self.missing:
            reason = self.problem.rstrip(".") if self.problem else "unknown reason"
            return (
                f"No LLM was used: the configured chat model `{self.spec}` could not be loaded: {reason}. "
                "Here are the most relevant images and passages."
            )
        return "No LLM was used (none configured): here are the most relevant images and passages."


def short_name(source: str) -> str:
    """A file's name without its folders (``…/images/red_circle_01.png`` → ``red_circle_01.png``)."""
    return Path(source).name or source


def image_anchor(key: str, n: int) -> str:
    """The HTML id of source ``n``'s place in the image grid of the answer drawn under ``key``."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", key)
    return f"mmrag-{safe}-img-{n}"


def answer_markdown(answer: Answer, key: str, llm: LLMStatus | None = None) -> str:
    """The answer as Markdown for the page (``key`` names its image grid, as in :func:`image_anchor`)."""
    images = {s.n for s in answer.sources if s.modality == IMAGE}
    if answer.llm_used:
        return _link_citations(answer.answer, images, key).replace("\n", "  \n")
    status = llm or LLMStatus()
    if not answer.sources:  # nothing to answer from: a working chat model was not asked
        if status.spec and not status.missing:
            return NOTHING_FOUND
        return f"{status.retrieval_only_note()}\n\n{NOTHING_FOUND}"
    lines = [status.retrieval_only_note()]
    shown = [s for s in answer.sources if s.modality == IMAGE]
    passages = [s for s in answer.sources if s.modality == TEXT]
    if shown:
        lines += ["", "**Images**", ""]
        lines += [_image_line(s, key) for s in shown]
    if passages:
        lines += ["", "**Passages**", ""]
        lines += [f"- [{s.n}] `{short_name(s.source)}` · {s.score:.2f}: {s.snippet}" for s in passages]
    return "\n".join(lines)


def _image_line(source: AnswerSource, key: str) -> str:
    caption = source.snippet if source.snippet != short_name(source.source) else ""
    line = f"- [[{source.n}] {short_name(source.source)}](#{image_anchor(key, source.n)}) · {source.score:.2f}"
    return f"{line} · {caption}" if caption else line


def _link_citations(text: str, images: set[int], key: str) -> str:
    def link(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        if not any(n in images for n in numbers):
            return match.group(0)
        return "".join(f"[\\[{n}\\]](#{image_anchor(key, n)})" if n in images else f"\\[{n}\\]" for n in numbers)

    return _CITATION.sub(link, text)
