"""What a knowledge base holds of documents with pictures: PDF figures, page images, and OCR'd images."""

from __future__ import annotations

from dataclasses import dataclass

from mmrag.kb.records import FIGURE, IMAGE, KIND, OCR, PAGE, PARENT, TEXT
from mmrag.kb.store import Store


@dataclass(frozen=True)
class PictureCounts:
    """Figures and page images (image records from PDFs), OCR'd images (ones with OCR text), child texts."""

    figures: int
    pages: int
    ocr_images: int
    children: int


def picture_counts(store: Store) -> PictureCounts:
    """Count them from the records' metadata (one paged read of each collection)."""
    images = store.metadatas(IMAGE)
    kinds = [str(m.get(KIND, "")) for m in images.values()]
    children = [m for m in store.metadatas(TEXT).values() if m.get(PARENT)]
    ocr_parents = {str(m[PARENT]) for m in children if m.get(KIND) == OCR}
    return PictureCounts(kinds.count(FIGURE), kinds.count(PAGE), len(ocr_parents), len(children))
