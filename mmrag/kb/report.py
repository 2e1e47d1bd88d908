"""What a sync did, and where it is while it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mmrag.files.paths import printable


@dataclass(frozen=True)
class SyncProgress:
    """Where a sync is: ``done`` of ``total`` files that need embedding, and the file just finished."""

    done: int
    total: int
    current: str
    found: int = 0
    """Files the sync looked at (sent once, with ``done == 0``, before embedding starts)."""


ProgressCallback = Callable[[SyncProgress], None]


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed, and why (both printable: see :func:`mmrag.files.paths.printable`)."""

    source: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", printable(self.source))
        object.__setattr__(self, "reason", printable(self.reason))


@dataclass
class SyncReport:
    """What a sync did. ``to_json()`` gives the CLI's ``--json`` summary."""

    added: int = 0
    updated: int = 0
    renamed: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0
    embedded_images: int = 0
    embedded_chunks: int = 0
    seconds: float = 0.0
    figures: int = 0
    """Figures extracted from PDFs (image documents)."""
    pages: int = 0
    """PDF pages without text rendered to page images."""
    ocr_images: int = 0
    """Images and figures whose text was read (OCR)."""
    ocr_pages: int = 0
    """Rendered PDF pages whose text was read (OCR)."""
    ocr_seconds: float = 0.0
    ocr: str = ""
    """The OCR engine used, or why OCR was off."""
    parts_skipped: list[Skipped] = field(default_factory=list)
    """Parts of indexed files that were left out (a figure past the megapixel limit, OCR past its budget)."""

    def summary(self, *, timing: bool = False) -> str:
        """One line for people: what changed, and (with ``timing``) how long it took and what was embedded."""
        line = (
            f"added {self.added}, updated {self.updated}, renamed {self.renamed}, removed {self.removed}, "
            f"unchanged {self.unchanged}, skipped {len(self.skipped)}"
        )
        if timing:
            line += (
                f"  ({self.seconds:.1f}s; {self.embedded_images} images and {self.embedded_chunks} text chunks "
                "embedded)"
            )
        return line + self.pictures_summary()

    def pictures_summary(self) -> str:
        """The PDF figures and pages and the OCR of this sync, on a line of its own ("" when there were none)."""
        if not (self.figures or self.pages or self.ocr_images or self.ocr_pages or self.parts_skipped):
            return ""
        return (
            f"\n{self.figures} PDF figures, {self.pages} scanned pages; OCR read {self.ocr_images} images and "
            f"{self.ocr_pages} pages in {self.ocr_seconds:.1f}s (OCR: {self.ocr}); {len(self.parts_skipped)} parts "
            "left out"
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = [asdict(s) for s in self.skipped]
        data["parts_skipped"] = [asdict(s) for s in self.parts_skipped]
        data["seconds"] = round(self.seconds, 3)
        data["ocr_seconds"] = round(self.ocr_seconds, 3)
        return data
