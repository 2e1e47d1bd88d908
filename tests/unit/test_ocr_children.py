"""A hit on an image's child text returns the image once, with the matched text (mmrag/search/children.py)."""

from __future__ import annotations

from pathlib import Path

import chromadb
import numpy as np

from mmrag.kb.records import IMAGE, TEXT, Record, child_id, image_id
from mmrag.kb.store import Store
from mmrag.model.clip import ClipModel
from mmrag.search.children import MATCHED, with_parents
from mmrag.search.hits import Hit


def _hit(id_: str, modality: str, z: float, document: str = "", **meta: object) -> Hit:
    return Hit(id_, modality, "/f/sign.png", 0.5, z, 0.5, document, {"source": "/f/sign.png", **meta})  # type: ignore[arg-type]


def test_children_collapse_to_their_parent_once(tmp_path: Path, tiny_clip: ClipModel) -> None:
    store = Store(chromadb.PersistentClient(str(tmp_path / "kb")), tiny_clip)
    parent = image_id("/f/sign.png")
    dim = tiny_clip.dim
    store.upsert(IMAGE, [Record(parent, np.ones(dim, np.float32) / dim**0.5, "data:thumb", {"source": "/f/sign.png"})])
    hits = [
        _hit(child_id(parent, "ocr", 0), TEXT, 3.0, "WALRUS CROSSING", parent_id=parent, kind="ocr"),
        _hit("txt-note-00000", TEXT, 2.0, "a note"),
        _hit(child_id(parent, "ocr", 1), TEXT, 1.5, "slow down", parent_id=parent, kind="ocr"),
        _hit(parent, IMAGE, 1.0, "data:thumb"),
        _hit("txt-orphan-ocr-000", TEXT, 0.5, "gone", parent_id="img-gone", kind="ocr"),
    ]
    out = with_parents(hits, store)
    assert [(h.id, h.modality) for h in out] == [(parent, IMAGE), ("txt-note-00000", TEXT)]
    assert out[0].z == 3.0  # scored as its best child
    assert out[0].metadata[MATCHED] == "WALRUS CROSSING"
    assert out[0].document == "data:thumb"
    texts = [h for h in hits if h.modality == TEXT]
    assert [h.id for h in with_parents(texts, store, modality="text")] == ["txt-note-00000"]


def test_an_image_ranked_first_gets_the_matched_text(tmp_path: Path, tiny_clip: ClipModel) -> None:
    store = Store(chromadb.PersistentClient(str(tmp_path / "kb")), tiny_clip)
    parent = image_id("/f/sign.png")
    store.upsert(IMAGE, [Record(parent, np.ones(tiny_clip.dim, np.float32), "data:thumb", {"source": "/f/sign.png"})])
    hits = [_hit(parent, IMAGE, 2.0), _hit(child_id(parent, "caption", 0), TEXT, 1.0, "Figure 1", parent_id=parent)]
    out = with_parents(hits, store)
    assert len(out) == 1
    assert out[0].metadata[MATCHED] == "Figure 1"
