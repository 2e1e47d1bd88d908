"""The torch-free CLIP tokenizer gives open_clip's token ids, on many texts in many scripts."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mmrag.model.clip_tokenizer import ClipTokenizer, _tables, trim, vocab_path

TEXTS = [
    "a red circle",
    "A Photo of a CAT, sleeping!",
    "一个红色的圆形",
    "日落海边的红色方块, and some English after it",
    "",
    " ",
    "x",
    "don't stop &amp; go &lt;b&gt; &amp;amp;",
    "café naïve – “quotes” ‘single’ …",
    "emoji 🐱🐶 and ZWJ 👩‍👩‍👧",
    "<start_of_text> <end_of_text> inside",
    "   spaced\t\nout \r\n lines  ",
    "control\x00\x07\x1b[31m chars\x7f",
    "한국어 텍스트, Ελληνικά, русский, עברית, العربية, हिन्दी",
    "ﬁ ligature and ｆｕｌｌｗｉｄｔｈ",
    "mojibake: cafÃ© and â€œquotedâ€\x9d",
    "snake_case and CamelCase and 3.14159 and 1,000,000",
    "a big blue square on the left " * 20,
]


def _random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghij KLMNOP 0123 .,!?'’\"一二三猫狗红色圆形の日本語éàüß\t\n\r&;<>_-#@" + "\x00\x1b"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90))) for _ in range(n)]


@pytest.mark.parametrize("clean", ["lower", "whitespace", "canonicalize"])
@pytest.mark.parametrize("context", [77, 32, 5])
def test_same_ids_as_open_clip(clean: str, context: int) -> None:
    from open_clip.tokenizer import SimpleTokenizer

    texts = TEXTS + _random_texts(300, seed=context)
    theirs = SimpleTokenizer(context_length=context, clean=clean)(texts).numpy()
    ours = ClipTokenizer(context, clean)(texts)
    assert ours.dtype == np.int64
    assert ours.shape == theirs.shape
    mismatched = [t for t, a, b in zip(texts, ours, theirs, strict=True) if not (a == b).all()]
    assert mismatched == []


def test_same_ids_as_the_models_tokenizer() -> None:
    """What the model's own tokenizer gives (open_clip.get_tokenizer), e.g. for ViT-B-32."""
    import open_clip

    texts = TEXTS + _random_texts(200, seed=7)
    assert (ClipTokenizer(77)(texts) == open_clip.get_tokenizer("ViT-B-32")(texts).numpy()).all()


def test_encode_and_truncation_keep_the_end_token() -> None:
    tok = ClipTokenizer(6)
    ids = tok(["one two three four five six seven"])[0]
    assert ids[0] == tok.sot_token_id
    assert ids[-1] == tok.eot_token_id
    assert len(tok.encode("one two three four five six seven")) == 7


def test_trim_cuts_padding_columns() -> None:
    tokens = ClipTokenizer(32)(["a red circle", "x"])
    trimmed = trim(tokens)
    assert trimmed.shape == (2, 5)  # start, a, red, circle, end
    assert (trimmed == tokens[:, :5]).all()
    assert trim(np.zeros((0, 32), dtype=np.int64)).shape == (0, 1)


def test_tables_cache_round_trip(tmp_path: Path) -> None:
    cache = tmp_path / "tables.marshal"
    _tables.cache_clear()
    first = ClipTokenizer(77, tables_cache=cache)
    assert cache.is_file()
    _tables.cache_clear()
    again = ClipTokenizer(77, tables_cache=cache)
    assert again.encoder == first.encoder
    assert (again(TEXTS) == first(TEXTS)).all()
    cache.write_bytes(b"not marshal")  # a damaged cache is rebuilt, never trusted
    _tables.cache_clear()
    assert (ClipTokenizer(77, tables_cache=cache)(TEXTS) == first(TEXTS)).all()
    _tables.cache_clear()


def test_imports_no_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from mmrag.model.clip_tokenizer import ClipTokenizer; ClipTokenizer(77)(['一只猫 &amp; a cat'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'open_clip', 'torchvision'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert vocab_path().name == "bpe_simple_vocab_16e6.txt.gz"
