"""What the tools of one knowledge base share: the knowledge base, the image guard, the classifier, the limits
and the view of paths the LLM gets."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from mmrag.defaults import DEFAULT_MAX_K, DEFAULT_MAX_LABELS
from mmrag.errors import ConfigError
from mmrag.files.paths import is_under
from mmrag.kb.guard import ImageGuard, ImageRef
from mmrag.kb.records import TEXT
from mmrag.kb.report import SyncReport
from mmrag.kb.store import Store
from mmrag.model.clip import ClipModel
from mmrag.search.searcher import Searcher
from mmrag.search.zeroshot import ZeroShotClassifier
from mmrag.tools.paths import PathView
from mmrag.tools.schemas import HARD_MAX_K


class ToolKnowledgeBase(Protocol):
    """What the tools need of a knowledge base (:class:`mmrag.KnowledgeBase` is one)."""

    @property
    def store(self) -> Store: ...

    @property
    def searcher(self) -> Searcher: ...

    @property
    def clip(self) -> ClipModel: ...

    def add_files(self, paths: Sequence[str | Path]) -> SyncReport: ...


class ToolContext:
    """What the tools of one knowledge base share.

    Args:
        kb: the knowledge base.
        guard: resolves image arguments (see :mod:`mmrag.kb.guard`).
        max_k: the most results one call returns.
        max_labels: the most labels one classification takes.
        full_paths: show the LLM absolute paths and the knowledge base's location (see :mod:`mmrag.tools.paths`).

    Raises:
        ConfigError: a limit out of range.
    """

    def __init__(
        self,
        kb: ToolKnowledgeBase,
        guard: ImageGuard,
        *,
        max_k: int = DEFAULT_MAX_K,
        max_labels: int = DEFAULT_MAX_LABELS,
        full_paths: bool = False,
    ) -> None:
        if not 1 <= max_k <= HARD_MAX_K:
            msg = f"max_k must be between 1 and {HARD_MAX_K}, got {max_k}"
            raise ConfigError(msg)
        if max_labels < 2:
            msg = f"max_labels must be at least 2, got {max_labels}"
            raise ConfigError(msg)
        self.kb = kb
        self.guard = guard
        self.max_k = max_k
        self.max_labels = max_labels
        self.full_paths = full_paths
        self._classifier: ZeroShotClassifier | None = None
        self.view = PathView(self.folders, kb.store.location, full_paths=full_paths)
        self._text_folders: tuple[int, tuple[Path, ...]] = (-1, ())
        self._lock = threading.Lock()

    @property
    def classifier(self) -> ZeroShotClassifier:
        """Zero-shot classification on the knowledge base's score scale (made on first use)."""
        if self._classifier is None:
            self._classifier = ZeroShotClassifier(self.kb.clip, scorer=self.kb.searcher.scorer)
        return self._classifier

    @classmethod
    def of(
        cls,
        kb: ToolKnowledgeBase,
        *,
        roots: Iterable[str | Path] | None = None,
        max_k: int = DEFAULT_MAX_K,
        max_labels: int = DEFAULT_MAX_LABELS,
        full_paths: bool = False,
    ) -> ToolContext:
        """A context whose image guard allows the knowledge base's image folders plus ``roots``."""
        guard = ImageGuard(kb.store, roots)
        return cls(kb, guard, max_k=max_k, max_labels=max_labels, full_paths=full_paths)

    @property
    def searcher(self) -> Searcher:
        return self.kb.searcher

    def image(self, argument: str) -> ImageRef:
        """The confined image ``argument`` names (see :class:`~mmrag.kb.guard.ImageGuard`)."""
        return self.guard.resolve(argument)

    def cap(self, k: int) -> tuple[int, str]:
        """``k`` capped at ``max_k``, and a note for the LLM when it was."""
        if k > self.max_k:
            return self.max_k, f" (k capped at {self.max_k})"
        return k, ""

    def folders(self) -> tuple[Path, ...]:
        """The knowledge base's folders: the image guard's roots (image folders and explicit roots), then the
        top-most folders of its text files that lie outside those."""
        images = self.guard.roots
        count = self.kb.store.count(TEXT)
        with self._lock:
            if count != self._text_folders[0]:
                sources = {str(m.get("source", "")) for m in self.kb.store.metadatas(TEXT).values()}
                parents = {Path(s).parent for s in sources if Path(s).is_absolute()}
                self._text_folders = (count, _top_most(parents))
            texts = self._text_folders[1]
        return (*images, *(f for f in texts if not any(is_under(f, root) for root in images)))


def _top_most(folders: Iterable[Path]) -> tuple[Path, ...]:
    """The folders without those inside another one; never ``/`` or the home folder itself."""
    never = {Path("/"), Path.home()}
    unique = sorted(set(folders) - never, key=lambda f: (len(f.parts), f.as_posix()))
    kept: list[Path] = []
    for folder in unique:
        if not any(is_under(folder, k) for k in kept):
            kept.append(folder)
    return tuple(kept)
