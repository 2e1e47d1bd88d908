"""Query cards: what a process needs to encode query texts from a cached ONNX export without torch.

A cached export (``text-<weights hash>.onnx``, :mod:`mmrag.model.onnx_text`) is named by a hash of the
torch weights, so finding it means loading torch and the model: seconds and hundreds of MB that a one-shot
``mmrag search`` would spend on one short text. So when an export is ready and checked, mmrag also writes
a small card beside it, ``query-<key>.json``, found from the model *choice* alone (``toy``, ``local-dir:…``,
``ViT-B-32`` + tag, …), with:

- the export's file name, the embedding dimension and the model's ``logit_scale``;
- the tokenizer: context length and cleaning, written only after :class:`~mmrag.model.clip_tokenizer.ClipTokenizer`
  gave the model's own tokenizer's ids on :data:`CHECK_TEXTS`;
- the weight files it was made from, with their sizes and modification times.

A card is used only while those files are unchanged and the export is there; otherwise the model loads as
before (and writes a fresh card when its export is ready again). This module imports neither torch nor
open_clip.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrag.model.weights import HF_PREFIX, LOCAL_DIR_PREFIX, RANDOM, WEIGHT_FILES, ModelSource, label_for
from mmrag.toy import TOY_MODEL_NAME, checkpoint_dir

log = logging.getLogger(__name__)

CARD_FORMAT = 1
CHECK_TEXTS = (
    "a red circle",
    "A Photo of a CAT, sleeping!",
    "一个红色的圆形",
    "日落海边的红色方块",
    "",
    "x",
    "don't stop &amp; café naïve – “quotes” 123 🐱",
    "a big blue square on the left " * 20,
)
"""Texts on which the torch-free tokenizer must give the model's tokenizer's ids before a card is written."""
_CLEANERS = {"_clean_lower": "lower", "_clean_whitespace": "whitespace", "_clean_canonicalize": "canonicalize"}


def card_key(model: str, pretrained: str | None, cache_dir: str | None = None) -> str | None:
    """The card's key for a model choice, computed without torch; None for random weights (nothing to cache)."""
    if model == TOY_MODEL_NAME:
        what = f"{LOCAL_DIR_PREFIX}{checkpoint_dir().resolve()}"
    elif model.startswith(LOCAL_DIR_PREFIX):
        what = f"{LOCAL_DIR_PREFIX}{Path(model[len(LOCAL_DIR_PREFIX) :]).expanduser().resolve()}"
    elif model.startswith(HF_PREFIX):
        what = f"{model} {cache_dir or ''}"
    else:
        if pretrained == RANDOM:
            return None
        what = f"{label_for(model, pretrained)} {cache_dir or ''}"
    return hashlib.sha256(f"card {CARD_FORMAT}; {what}".encode()).hexdigest()[:24]


def card_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"query-{key}.json"


def weight_files(source: ModelSource) -> tuple[Path, ...]:
    """The files a resolved model's weights come from (empty when they are not all on disk)."""
    if source.model_name.startswith(LOCAL_DIR_PREFIX):
        folder = Path(source.model_name[len(LOCAL_DIR_PREFIX) :])
        return (folder / "open_clip_config.json", *(p for name in WEIGHT_FILES if (p := folder / name).is_file()))
    if source.pretrained and Path(source.pretrained).is_file():
        return (Path(source.pretrained).resolve(),)
    return ()


def _stamp(path: Path) -> list[Any]:
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


@dataclass(frozen=True)
class QueryCard:
    """A cached export's card (see the module docstring)."""

    label: str
    onnx: Path
    dim: int
    logit_scale: float
    context_length: int
    clean: str

    @classmethod
    def find(cls, cache_dir: Path, key: str | None) -> QueryCard | None:
        """The card for ``key`` if it is there, readable, and its export and weight files are unchanged."""
        if key is None:
            return None
        path = card_path(cache_dir, key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != CARD_FORMAT:
                return None
            for stamp in data["files"]:
                if _stamp(Path(stamp[0])) != stamp:
                    return None
            onnx = cache_dir / str(data["onnx"])
            if not onnx.is_file():
                return None
            return cls(
                label=str(data["label"]),
                onnx=onnx,
                dim=int(data["dim"]),
                logit_scale=float(data["logit_scale"]),
                context_length=int(data["context_length"]),
                clean=str(data["clean"]),
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def write(self, cache_dir: Path, key: str, files: tuple[Path, ...]) -> Path:
        """Write the card for ``key`` atomically; returns its path."""
        data = {
            "format": CARD_FORMAT,
            "label": self.label,
            "onnx": self.onnx.name,
            "dim": self.dim,
            "logit_scale": self.logit_scale,
            "context_length": self.context_length,
            "clean": self.clean,
            "files": [_stamp(f) for f in files],
        }
        path = card_path(cache_dir, key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)
        return path


def tokenizer_spec(tokenizer: Any) -> tuple[int, str] | None:
    """(context length, cleaning) when ``tokenizer`` is open_clip's plain ``SimpleTokenizer`` and the
    torch-free :class:`~mmrag.model.clip_tokenizer.ClipTokenizer` gives its ids on :data:`CHECK_TEXTS`;
    None otherwise (a Hugging Face tokenizer, extra special tokens, a reduction mask…)."""
    if type(tokenizer).__name__ != "SimpleTokenizer" or getattr(tokenizer, "reduction_fn", None) is not None:
        return None
    clean = _CLEANERS.get(getattr(getattr(tokenizer, "clean_fn", None), "__name__", ""))
    context = getattr(tokenizer, "context_length", None)
    if clean is None or not isinstance(context, int) or len(getattr(tokenizer, "encoder", ())) != 49408:
        return None
    from mmrag.errors import TextRuntimeError
    from mmrag.model.clip_tokenizer import ClipTokenizer

    try:
        ours = ClipTokenizer(context, clean)(list(CHECK_TEXTS))
    except TextRuntimeError:
        return None
    theirs = tokenizer(list(CHECK_TEXTS)).numpy()
    if ours.shape != theirs.shape or not (ours == theirs).all():
        log.warning("not writing a query card: the torch-free tokenizer disagrees with the model's")
        return None
    return context, clean


def remove_card(cache_dir: Path, key: str | None) -> None:
    if key is not None:
        with contextlib.suppress(OSError):
            card_path(cache_dir, key).unlink()
