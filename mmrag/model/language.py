"""Warn when a query's language is one the model was not trained to read.

Most CLIP models (ViT-B-32 / laion2b included) learned from English captions: "一只猫" is noise to them, and
the results look random without saying why. mmrag looks at the script of the text (Han, Kana, Hangul,
Cyrillic, Arabic, …) and, for a model that isn't multilingual, returns a warning naming the one to use.
"""

from __future__ import annotations

import unicodedata

from mmrag.config import MULTILINGUAL_MODEL, MULTILINGUAL_PRETRAINED
from mmrag.toy import TOY_MODEL_NAME

MULTILINGUAL_MARKERS = ("xlm-roberta", "mt5", "multilingual", "nllb", "m-clip", "siglip2", "-i18n")
"""Substrings of model names that read many languages."""

TOY_LANGUAGES = frozenset({"Latin", "Han"})
"""The toy model was trained on English and Chinese captions."""


def scripts(text: str) -> set[str]:
    """The writing systems of the letters in ``text`` (Latin, Han, Hiragana, Cyrillic, …)."""
    found: set[str] = set()
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        if name.startswith("CJK"):
            found.add("Han")
        elif name:
            found.add(name.split(" ")[0].title())
    return found


def is_multilingual(model_label: str) -> bool:
    lowered = model_label.lower()
    return any(marker in lowered for marker in MULTILINGUAL_MARKERS)


def language_warning(texts: list[str], model_label: str) -> str | None:
    """A warning if any text is in a script the model can't read, else None."""
    if is_multilingual(model_label):
        return None
    seen = set().union(*(scripts(t) for t in texts)) if texts else set()
    readable = TOY_LANGUAGES if model_label == TOY_MODEL_NAME else {"Latin"}
    foreign = sorted(seen - readable)
    if not foreign:
        return None
    if model_label == TOY_MODEL_NAME:
        return (
            f"the toy model reads only English and Chinese, and this text is in {', '.join(foreign)} script; "
            "results will be poor"
        )
    return (
        f"model {model_label} was trained on English text, but this text is in {', '.join(foreign)} script, so "
        f"results will be poor. For non-English queries use the multilingual model: --model {MULTILINGUAL_MODEL} "
        f"--pretrained {MULTILINGUAL_PRETRAINED} (re-index with --rebuild)"
    )
