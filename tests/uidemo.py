"""A small toy demo knowledge base for the UI tests (built once, copied per test)."""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path

from mmrag.config import Settings
from mmrag.factory import open_knowledge_base
from mmrag.toy.demo import write_demo_folder
from mmrag.toy.shapes import CLASSES, draw


def build_demo_kb(root: Path) -> Path:
    """The toy demo (one image per class, plus notes) indexed with the toy model into ``root/kb``."""
    files = root / "files"
    write_demo_folder(files, per_class=1)
    db = root / "kb"
    kb = open_knowledge_base(Settings.from_env({}, home=root / "home", db=db, model="toy", text_runtime="torch"))
    kb.sync(files)
    return db


def copy_kb(db: Path, target: Path) -> Path:
    shutil.copytree(db, target)
    return target


def shape_png(label: str = "red-circle", seed: int = 7) -> bytes:
    """A freshly drawn toy image of one class, as PNG bytes."""
    cls = next(c for c in CLASSES if c.label == label)
    buffer = io.BytesIO()
    draw(cls, random.Random(seed), size=128).save(buffer, format="PNG")
    return buffer.getvalue()
