"""A hit on text that belongs to an image stands for the image: the parent is returned once, with the text.

Text read from an image (OCR) or a PDF figure's caption is stored as child text records whose ``parent_id`` names
the image record (see :mod:`mmrag.kb.records`). Like LangChain's ``MultiVectorRetriever``, a search that finds
a child returns its parent instead, once, scored as its best-scoring child (or its own score, if better), with
the matching text in ``metadata["matched"]`` (and its kind, ``ocr`` or ``caption``, in
``metadata["matched_kind"]``) for snippets. Children never reach callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mmrag.kb.records import IMAGE, KIND, PARENT, TEXT, stored_metadata
from mmrag.kb.store import Store
from mmrag.search.hits import Hit

MATCHED = "matched"
MATCHED_KIND = "matched_kind"


def with_parents(hits: Sequence[Hit], store: Store, *, modality: str = "all") -> list[Hit]:
    """``hits`` (best first) with each child replaced by its parent image, each parent kept once, order kept.

    Args:
        hits: the hits, best first; those without ``parent_id`` in their metadata pass through unchanged.
        store: where the parents are read (one ``get`` for all of them).
        modality: the search's modality; a ``text`` search drops children (their parents are images).
    """
    if not any(h.metadata.get(PARENT) for h in hits):
        return list(hits)
    if modality == TEXT:
        return [h for h in hits if not h.metadata.get(PARENT)]
    wanted = [str(h.metadata[PARENT]) for h in hits if h.metadata.get(PARENT)]
    parents = {r.id: r for r in store.get(IMAGE, list(dict.fromkeys(wanted)))}
    out: list[Hit] = []
    position: dict[str, int] = {}
    for hit in hits:
        parent_id = str(hit.metadata.get(PARENT, ""))
        if not parent_id:
            if hit.id in position:
                continue  # its child scored higher and already stands for it
            position[hit.id] = len(out)
            out.append(hit)
            continue
        record = parents.get(parent_id)
        if record is None:
            continue  # an orphan (its image was removed meanwhile): nothing to show
        if parent_id in position:
            seen = out[position[parent_id]]
            if MATCHED not in seen.metadata:  # the image itself ranked first: still show the text it matched
                meta = seen.metadata | {MATCHED: hit.document, MATCHED_KIND: str(hit.metadata.get(KIND, ""))}
                out[position[parent_id]] = replace(seen, metadata=meta)
            continue
        meta = stored_metadata(record.metadata) | {MATCHED: hit.document, MATCHED_KIND: str(hit.metadata.get(KIND, ""))}
        position[parent_id] = len(out)
        out.append(
            replace(
                hit,
                id=parent_id,
                modality=IMAGE,
                source=str(meta.get("source", hit.source)),
                document=record.document,
                metadata=meta,
                embedding=None,
            )
        )
    return out
