"""The toy model's demo knowledge base: drawn shapes plus short bilingual notes about them.

:func:`write_demo_folder` writes it as an ordinary folder (``images/`` and ``notes/``) that
``mmrag index`` or ``KnowledgeBase.sync`` indexes like any other, with the toy model, offline.
"""

from __future__ import annotations

import random
from pathlib import Path

from mmrag.toy.shapes import CLASSES, COLOURS, SHAPES, ToyClass, draw

IMAGE_SIZE = 128


def class_note(cls: ToyClass) -> str:
    """A short note about one class, in the caption language the toy model reads."""
    return f"{cls.caption_en}\n\n{cls.caption_zh}\n"


def colour_note(colour_en: str, colour_zh: str) -> str:
    lines = [f"{c.caption_en}" for c in CLASSES if c.colour.en == colour_en]
    return f"{colour_en} shapes\n\n" + "\n".join(lines) + f"\n\n{colour_zh}的形状\n"


def write_demo_folder(folder: Path, *, per_class: int = 2, seed: int = 0) -> list[Path]:
    """Draw ``per_class`` images of each of the 24 classes, caption some, and write one note per class.

    Deterministic for a given seed. Existing files with the same names are overwritten; returns the
    paths written.
    """
    rng = random.Random(seed)
    images = folder / "images"
    notes = folder / "notes"
    images.mkdir(parents=True, exist_ok=True)
    notes.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for cls in CLASSES:
        name = cls.label.replace("-", "_")
        for i in range(per_class):
            path = images / f"{name}_{i + 1:02d}.png"
            draw(cls, rng, size=IMAGE_SIZE).save(path)
            written.append(path)
        caption = images / f"{name}_01.txt"
        caption.write_text(cls.caption_en + "\n", encoding="utf-8")
        written.append(caption)
        note = notes / f"{name}.md"
        note.write_text(class_note(cls), encoding="utf-8")
        written.append(note)
    readme = folder / "README.md"
    readme.write_text(
        "The toy demo knowledge base: "
        f"{len(COLOURS)} colours × {len(SHAPES)} shapes, drawn by mmrag, with a note per class.\n",
        encoding="utf-8",
    )
    written.append(readme)
    return written
