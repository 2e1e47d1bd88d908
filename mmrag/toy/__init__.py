"""The offline toy CLIP: a tiny real open_clip model that mmrag trains on synthetic shapes.

Real CLIP weights need a download; the toy model does not. Its checkpoint ships inside
the package (``mmrag/toy/checkpoint``) and loads through open_clip's usual
``local-dir:`` prefix, so search, zero-shot classification and Chinese queries can all
be shown working offline::

    import open_clip
    from mmrag.toy import toy_model_id

    model, _, preprocess = open_clip.create_model_and_transforms(toy_model_id())
    tokenizer = open_clip.get_tokenizer(toy_model_id())

It knows 24 classes (six colours times four shapes, see :mod:`mmrag.toy.shapes`), in
English and Chinese. :mod:`mmrag.toy.train` regenerates it and :mod:`mmrag.toy.report`
measures it (``scripts/build_toy.py``, ``mmrag toy-eval``).
This module imports neither torch nor open_clip.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TOY_MODEL_NAME", "checkpoint_dir", "toy_model_id"]

TOY_MODEL_NAME = "toy"
"""The name that selects the toy model (for example ``MMRAG_MODEL=toy``)."""


def checkpoint_dir() -> Path:
    """The packaged checkpoint directory (``open_clip_config.json`` and the safetensors weights)."""
    return Path(__file__).resolve().parent / "checkpoint"


def toy_model_id() -> str:
    """The open_clip model name of the packaged checkpoint: ``"local-dir:<checkpoint_dir>"``."""
    return "local-dir:" + str(checkpoint_dir())
