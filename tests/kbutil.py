"""Helpers for knowledge-base tests: folders of real files and a snapshot of what Chroma holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmrag.config import Settings
from mmrag.factory import open_knowledge_base
from mmrag.kb.records import MODALITIES
from mmrag.langchain.knowledge_base import KnowledgeBase

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


def open_kb(db: Path, model: str | None, **kw: Any) -> KnowledgeBase:
    settings = Settings.from_env({}, home=db.parent / "home", db=db, model=model, text_runtime="torch", **kw)
    return open_knowledge_base(settings)


def snapshot(kb: KnowledgeBase) -> dict[str, dict[str, tuple[str, dict[str, Any], tuple[float, ...]]]]:
    """Everything stored: modality → id → (document, metadata, rounded vector)."""
    out: dict[str, dict[str, tuple[str, dict[str, Any], tuple[float, ...]]]] = {}
    for modality in MODALITIES:
        ids = list(kb.store.metadatas(modality))
        out[modality] = {
            r.id: (r.document, r.metadata, tuple(np.round(np.asarray(r.embedding), 5).tolist()))
            for r in kb.store.get(modality, ids, embeddings=True)
        }
    return out
