"""Real files for tests: random images, a folder of images and notes, freshly drawn toy shapes."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
from PIL import Image

from mmrag.toy.shapes import CLASSES, draw

NOTES = {
    "cats.md": "# Cats\n\nCats are small carnivorous mammals. " * 6,
    "coffee.txt": "Espresso is brewed by forcing hot water through finely ground coffee. " * 4,
}


def make_image(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def make_folder(root: Path, n_images: int = 3) -> Path:
    """``images/img{i}.png`` (img0 has a sidecar caption) and two notes."""
    for i in range(n_images):
        make_image(root / "images" / f"img{i}.png", seed=i)
    (root / "images" / "img0.txt").write_text("a noisy test picture\n")
    for name, text in NOTES.items():
        (root / "notes" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "notes" / name).write_text(text)
    return root


def shape_png(label: str = "red-circle", seed: int = 7) -> bytes:
    """A freshly drawn toy image of one class, as PNG bytes."""
    cls = next(c for c in CLASSES if c.label == label)
    buffer = io.BytesIO()
    draw(cls, random.Random(seed), size=128).save(buffer, format="PNG")
    return buffer.getvalue()
