"""chunk_text: every chunk fits the context exactly, offsets are exact, the text is covered, and it's fast."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmrag.files.chunking import _RANKS, SEPARATORS, Chunk, WordCounter, Words, chunk_text
from mmrag.model.clip import ClipModel

TokenCount = Callable[[str], int]


def per_char(s: str) -> int:
    """A fake tokenizer: one token per character, whitespace included, plus start and end."""
    return len(s) + 2


def wordish(s: str) -> int:
    """A fake tokenizer shaped like CLIP's: whitespace is free, a word costs a token per 3 characters, a
    CJK character or emoji 3 tokens, a run of punctuation one."""
    n = 2
    for m in re.finditer(r"[a-zA-Z\u00c0-\u024f\u0300-\u036f]+|[0-9]|[^\sa-zA-Z0-9]", s):
        w = m.group()
        n += (len(w) + 2) // 3 if (w[0].isascii() and w[0].isalpha()) or "\u00c0" <= w[0] <= "\u036f" else 3
    return n


def check(text: str, chunks: list[Chunk], token_count: TokenCount, max_tokens: int) -> None:
    """The invariants every chunking must hold."""
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text
        assert c.text == c.text.strip()
        assert text[c.start : c.start + len(c.text)] == c.text  # offsets into the text as given
        assert token_count(c.text) <= max_tokens
    for a, b in itertools.pairwise(chunks):  # in order, each bringing something new
        assert a.start < b.start
        assert a.start + len(a.text) < b.start + len(b.text)
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start : c.start + len(c.text)] = b"\x01" * len(c.text)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert missing == [], f"characters not in any chunk at {missing[:10]}"
    if not text.strip():
        assert chunks == []


@pytest.fixture(scope="module")
def toy() -> ClipModel:
    return ClipModel("toy", device="cpu", text_runtime="torch")


PROSE = (
    "The cat sat on the mat. It was a sunny day, and the birds were singing! Was the dog asleep? "
    "Nobody knew; the garden was quiet.\n"
    "A second line follows here, with a comma, and another clause.\n\n"
)
CHINESE = "一只猫在沙发上睡觉。窗外下着雨，屋里很安静！它醒了吗？没有；它还在做梦。\n\n"
TEXTS = {
    "prose": PROSE * 12,
    "chinese": CHINESE * 12,
    "chinese without punctuation": "一只猫在沙发上睡觉窗外下着雨屋里很安静" * 20,
    "emoji": "I love 🐈 and 👩‍👩‍👧 families 🏳️‍🌈! " * 20 + "🎉" * 100,
    "long url": "see https://example.com/" + "a-very-long-path-segment/" * 40 + "?q=1 for details",
    "one long word": "x" * 3000,
    "letters": "thequickbrownfoxjumpsoverthelazydog" * 60,
    "whitespace around": "\n\n   \t" + PROSE * 3 + "  \n\n  ",
    "windows newlines": (PROSE * 3).replace("\n", "\r\n"),
    "combining marks": "e\u0301" * 400 + " cafe\u0301 " * 30,
    "digits": "3.14159265358979 " * 40,
    "mixed": (PROSE + CHINESE + "🐈" * 30 + " " * 200 + "word ") * 4,
    "chinese with quotes and latin": "他说：“人本来就生而自由。”Python 3 和 CLIP 模型，東京。《真》。\n" * 12,
}


@pytest.mark.parametrize("counter", ["token_count", "token_counter"])  # probed, or from the counter's words
@pytest.mark.parametrize("max_tokens", [32, 77])
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_real_tokenizer_invariants(toy: ClipModel, name: str, max_tokens: int, counter: str) -> None:
    text = TEXTS[name]
    chunks = chunk_text(text, token_count=getattr(toy, counter), max_tokens=max_tokens)
    check(text, chunks, toy.token_count, max_tokens)
    assert len(chunks) >= 2
    fill = sum(toy.token_count(c.text) for c in chunks[:-1]) / max(1, len(chunks) - 1) / max_tokens
    assert fill > 0.5  # chunks aren't needlessly small


def test_toy_context_is_32(toy: ClipModel) -> None:
    assert toy.context_length == 32


def test_empty_and_blank() -> None:
    for text in ["", "   ", "\n\n\t  \n"]:
        assert chunk_text(text, token_count=per_char, max_tokens=10) == []


def test_offsets_refer_to_the_text_as_given() -> None:
    text = "\n\n  hello world.\n\nsecond paragraph here."
    chunks = chunk_text(text, token_count=per_char, max_tokens=30, overlap=0)
    assert [(c.text, c.start) for c in chunks] == [("hello world.", 4), ("second paragraph here.", 18)]


def test_short_text_is_one_chunk() -> None:
    assert chunk_text("  a cat on a sofa \n", token_count=per_char, max_tokens=77) == [Chunk("a cat on a sofa", 0, 2)]


def test_separators_are_preferred_in_order() -> None:
    # Two paragraphs that don't fit together: cut between them, not at the sentence end before.
    text = "Aaa bbb. Ccc ddd\n\nEee fff. Ggg hhh."
    chunks = chunk_text(text, token_count=per_char, max_tokens=22, overlap=0)
    assert [c.text for c in chunks] == ["Aaa bbb. Ccc ddd", "Eee fff. Ggg hhh."]
    # No paragraph or line break within reach: the last sentence end, Chinese or English, that fits.
    text = "One two. Three four! Five six. Seven eight nine ten eleven."
    chunks = chunk_text(text, token_count=per_char, max_tokens=36, overlap=0)
    assert chunks[0].text == "One two. Three four! Five six."
    text = "一二三。四五六！七八九，十一二三四五六七八九十"
    chunks = chunk_text(text, token_count=per_char, max_tokens=12, overlap=0)
    assert chunks[0].text == "一二三。四五六！"
    # Within a sentence, the last clause mark; within a clause, the last space.
    chunks = chunk_text("alpha beta, gamma delta epsilon zeta", token_count=per_char, max_tokens=26, overlap=0)
    assert chunks[0].text == "alpha beta,"
    chunks = chunk_text("alpha beta gamma delta epsilon", token_count=per_char, max_tokens=20, overlap=0)
    assert chunks[0].text == "alpha beta gamma"


def test_separators_keep_their_grouping() -> None:
    assert [sep for rank in _RANKS for sep in rank] == SEPARATORS[:-1]
    assert SEPARATORS[-1] == ""


def test_a_long_word_is_split_inside() -> None:
    text = "short " + "y" * 500 + " end"
    chunks = chunk_text(text, token_count=per_char, max_tokens=40, overlap=0)
    check(text, chunks, per_char, 40)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")
    assert chunks[0].text == "short"
    assert all(34 <= len(c.text) <= 38 for c in chunks[1:-1])  # pieces of the word about fill the budget


def test_neighbouring_chunks_share_boundary_words(toy: ClipModel) -> None:
    text = " ".join(f"word{i}" for i in range(300))
    chunks = chunk_text(text, token_count=toy.token_count, max_tokens=32, overlap=6)
    assert len(chunks) > 5
    for a, b in itertools.pairwise(chunks):
        shared = text[b.start : a.start + len(a.text)]
        assert shared.strip(), "no overlap"
        assert b.text.startswith(shared)
        assert text[b.start - 1] == " "  # the overlap starts at a word
        assert toy.token_count(shared) - 2 <= 6 + 3  # about the overlap asked for


def test_overlap_is_capped_at_a_quarter_and_can_be_off() -> None:
    text = " ".join(["abc"] * 200)
    for overlap, most in [(0, 0), (4, 4), (100, 40 // 4)]:
        chunks = chunk_text(text, token_count=per_char, max_tokens=42, overlap=overlap)
        for a, b in itertools.pairwise(chunks):
            shared = max(0, a.start + len(a.text) - b.start)
            assert shared <= most + 1
            if overlap:
                assert shared >= 3  # at least the boundary word


def test_sentence_cuts_overlap_by_whole_sentences_only() -> None:
    short = "Hi there. " * 40  # sentences of 9 characters: a whole one fits in the overlap
    chunks = chunk_text(short, token_count=per_char, max_tokens=50, overlap=12)
    assert all(c.text.startswith("Hi there.") and c.text.endswith("there.") for c in chunks)
    assert all(a.start + len(a.text) > b.start for a, b in itertools.pairwise(chunks))
    long = "This sentence is long enough. " * 20  # too long to repeat: no overlap, as before
    chunks = chunk_text(long, token_count=per_char, max_tokens=70, overlap=12)
    assert all(a.start + len(a.text) < b.start for a, b in itertools.pairwise(chunks))


def test_deterministic(toy: ClipModel) -> None:
    text = TEXTS["mixed"]
    runs = [chunk_text(text, token_count=toy.token_count, max_tokens=32) for _ in range(2)]
    assert runs[0] == runs[1]


def test_max_tokens_too_small() -> None:
    with pytest.raises(ValueError, match="no room"):
        chunk_text("hello", token_count=per_char, max_tokens=2)
    with pytest.raises(ValueError, match="alone takes more"):
        chunk_text("ab\U0001f600cd", token_count=lambda s: 2 + len(s) + 50 * ("\U0001f600" in s), max_tokens=20)


def test_no_call_sees_a_huge_string_and_calls_are_few() -> None:
    seen: list[int] = []

    def counting(s: str) -> int:
        seen.append(len(s))
        return wordish(s)

    for text in ["x" * 200_000, "猫" * 100_000, ("word " * 30 + "\n\n") * 2000, "a " + " " * 500_000 + "b"]:
        seen.clear()
        chunks = chunk_text(text, token_count=counting, max_tokens=77)
        check(text, chunks, wordish, 77)
        assert max(seen) <= 77 * 24
        assert len(seen) <= 2 * len(chunks) + 5
        assert sum(seen) <= 2.5 * len(text.strip()) + 10_000


def test_whitespace_runs_are_not_chunks() -> None:
    text = "alpha" + " " * 10_000 + "beta" + "\n" * 10_000 + "gamma"
    chunks = chunk_text(text, token_count=wordish, max_tokens=20)
    assert [c.text for c in chunks] == ["alpha", "beta", "gamma"]
    check(text, chunks, wordish, 20)


def test_imports_no_langchain() -> None:
    code = "import sys, mmrag.files.chunking; print(any(m.startswith('langchain') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


ALPHABET = [*"abcxyz ABC 0123", " ", " ", "\n", "\n\n", "\t", ". ", ", ", "! ", "? ", "; ", *"猫狗雨。，！？；"]
ALPHABET += ["🐈", "👩\u200d👧", "🏳️\u200d🌈", "e\u0301", "&amp;", "\u00a0", "\u3000"]
pieces = st.one_of(
    st.sampled_from(ALPHABET),
    st.text(alphabet="abcdefghij", min_size=20, max_size=200),  # long words
    st.text(alphabet="猫狗雨天", min_size=10, max_size=60),  # Chinese with no punctuation
)
texts = st.lists(pieces, max_size=120).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=texts, max_tokens=st.integers(6, 80), overlap=st.integers(0, 20), fake=st.sampled_from([0, 1]))
def test_invariants_hold_for_any_text(text: str, max_tokens: int, overlap: int, fake: int) -> None:
    token_count = (per_char, wordish)[fake]
    if fake == 1:
        max_tokens = max(max_tokens, 8)  # an emoji with its joiners costs up to 5 + 2
    chunks = chunk_text(text, token_count=token_count, max_tokens=max_tokens, overlap=overlap)
    check(text, chunks, token_count, max_tokens)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, max_tokens=st.sampled_from([16, 32, 77]))
def test_invariants_hold_with_the_real_tokenizer(toy: ClipModel, text: str, max_tokens: int) -> None:
    chunks = chunk_text(text, token_count=toy.token_count, max_tokens=max_tokens)
    check(text, chunks, toy.token_count, max_tokens)


# --- the token count: exactly open_clip's, and fast (mmrag/model/tokens.py) -----------------------------------

COUNT_ALPHABET = [*"abcxyzABCXYZ 0123456789", " ", "\n", "\t", "\r\n", "\x0b", "\x1b[31m", "\x00", "\x7f", "'s", "'T"]
COUNT_ALPHABET += [*"猫狗雨天。，！？；、「」《》", "\u3000", "\u302a\u302b", *"ＡＢｃ１２，！？＆＜＞", "ｶﾀｶﾅ"]
COUNT_ALPHABET += ["🐈", "👩\u200d👧", "🏳️\u200d🌈", "e\u0301", "é", "Ã©", "â€™", "ſ", "'ſ", "ΟΔΟΣ", "İ", "ﬁ", "ß"]
COUNT_ALPHABET += ["&amp;", "&amp;amp;", "&lt;b&gt;", "&#x41;", "&nbsp;", "<b>", "<start_of_text>", "<END_OF_TEXT>"]
COUNT_ALPHABET += ["\u00a0", "\u2028", "\ufeff", "\u200b", "“quoted”", "½", "Ⅻ", "٣", "\ud7ff", "\U00020000"]
COUNT_ALPHABET += [*"‘’‚‛“”„‟ʼ·–—•…", "don’t", "Ã“", "â€œ", "Â·", "——", "……"]
count_texts = st.lists(
    st.one_of(
        st.sampled_from(COUNT_ALPHABET),
        st.text(alphabet="abcdefghij", min_size=20, max_size=400),  # long words: the slow case of open_clip's BPE
        st.text(alphabet="猫狗雨天的一是在不了", min_size=5, max_size=80),
        st.text(max_size=8),  # anything at all
    ),
    max_size=60,
).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=count_texts)
def test_the_token_count_is_exactly_open_clips(toy: ClipModel, text: str) -> None:
    tokenizer = toy._ensure().tokenizer
    assert toy.token_count(text) == len(tokenizer.encode(text)) + 2


def test_the_fast_count_serves_open_clips_bpe_tokenizer_only(toy: ClipModel) -> None:
    from open_clip.tokenizer import SimpleTokenizer

    from mmrag.model.tokens import fast_token_counter

    tokenizer = toy._ensure().tokenizer
    assert type(tokenizer) is SimpleTokenizer
    counter = fast_token_counter(tokenizer)
    assert counter is not None
    assert fast_token_counter(tokenizer) is counter  # built once
    assert fast_token_counter(object()) is None  # another tokenizer: its own encode is used


@pytest.mark.parametrize("name", ["prose", "chinese", "chinese without punctuation", "emoji", "letters", "mixed"])
def test_chunks_reach_the_model_whole(toy: ClipModel, name: str) -> None:
    """What the text tower reads of each chunk (open_clip's tokenizer, truncating at the context) is the
    whole chunk: its end-of-text token sits after the last content token, never cut off."""
    tokenizer = toy._ensure().tokenizer
    chunks = chunk_text(TEXTS[name], token_count=toy.token_counter, max_tokens=toy.context_length)
    for chunk in chunks:
        ids = tokenizer.encode(chunk.text)
        assert len(ids) + 2 <= toy.context_length
        row = tokenizer([chunk.text])[0].tolist()
        assert row[1 : len(ids) + 1] == ids
        assert row[len(ids) + 1] == tokenizer.eot_token_id


@pytest.mark.parametrize(
    "kind",
    ["English prose", "Chinese prose", "letters, no separator", "Chinese, no punctuation"],
)
def test_chunking_runs_at_megabytes_a_second(toy: ClipModel, kind: str) -> None:
    """≥ 1 MB/s in bench/chunking_speed.py on a quiet machine; here a floor a quarter of that, in CPU time,
    so a loaded machine passes and a return to the tokenizer-bound speeds (0.03-0.2 MB/s) does not."""
    import random
    import time

    rng = random.Random(1)
    words = ["the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "river", "garden", "letter"]
    hanzi = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过"
    make = {
        "English prose": lambda: " ".join(rng.choice(words) + rng.choice(["", "", ",", "."]) for _ in range(30_000)),
        "Chinese prose": lambda: "".join(rng.choice(hanzi) + rng.choice("    ，。").strip() for _ in range(40_000)),
        "letters, no separator": lambda: "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=120_000)),
        "Chinese, no punctuation": lambda: "".join(rng.choices(hanzi, k=40_000)),
    }
    text = make[kind]()
    toy.token_count("warm up")
    start = time.process_time()
    chunks = chunk_text(text, token_count=toy.token_counter, max_tokens=77)
    seconds = time.process_time() - start
    assert chunks
    assert len(text.encode()) / seconds / 1e6 >= 0.25, f"{kind}: {len(text.encode()) / seconds / 1e6:.2f} MB/s"


# --- the counter's words: exact counts of any stretch, so CJK text is chunked without probing ---------------

ODD_IDEOGRAPHS = "人本生真写東"  # in CLIP's vocabulary each counts one token more (or fewer) ending a word than inside
WORD_ALPHABET = [*"猫狗雨天的一是在不了", *ODD_IDEOGRAPHS, *"。，！？；、「」《》：…", *"“”‘’ʼ·–—•"]
WORD_ALPHABET += ["é", "々", "〇", "Ã"]
WORD_ALPHABET += [*"abc XYZ 019", "'s", "\n", "\t", "ＡＢ１，", "<start_of_text>", "&amp;", "と", "🐈", "\u00a0"]
word_texts = st.lists(
    st.one_of(
        st.sampled_from(WORD_ALPHABET),
        st.text(alphabet="猫狗雨天的一是在不了人本生真", min_size=5, max_size=120),  # runs of ideographs
        st.text(alphabet="abcdefghij", min_size=20, max_size=300),  # long words
        st.text(alphabet="。，…—", min_size=2, max_size=6),  # runs of punctuation
    ),
    min_size=1,
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=word_texts, data=st.data())
def test_words_count_exactly_as_the_tokenizer(toy: ClipModel, text: str, data: st.DataObject) -> None:
    """For any word begin and later word end of a stretch, its running counts give open_clip's own count."""
    tokenizer = toy._ensure().tokenizer
    counter = toy.token_counter
    assert isinstance(counter, WordCounter)
    start = data.draw(st.integers(0, len(text) - 1))
    stop = data.draw(st.integers(start, len(text)))
    words = counter.words(text, start, stop)
    assert start == words.origin <= words.stop <= stop
    length = words.stop - start
    assert len(words.totals) == len(words.begins) == len(words.ends) == length + 1
    begins = [o for o, flag in enumerate(words.begins) if flag]
    ends = [o for o, flag in enumerate(words.ends) if flag]
    assert all(abs(d) <= words.slack for d in words.closing.values())
    for _ in range(4):
        if not begins:
            break
        a = data.draw(st.sampled_from(begins))
        later = [b for b in ends if b > a]
        if not later:
            break
        b = data.draw(st.sampled_from(later))
        piece = text[start + a : start + b]
        counted = 2 + words.totals[b] - words.totals[a] + words.closing.get(b, 0)
        assert counted == len(tokenizer.encode(piece)) + 2, piece


def test_words_stop_where_they_cannot_tell(toy: ClipModel) -> None:
    counter = toy.token_counter
    assert isinstance(counter, WordCounter)
    text = "一只猫，é在这里。"
    words = counter.words(text, 0, len(text))
    # ftfy may change what surrounds an accented letter, and "，é" would be one word: nothing is told from the comma
    assert (words.stop, words.resume) == (3, 5)
    text = "他说：“人本来就生而自由。”——《真》……"
    assert counter.words(text, 0, len(text)).stop == len(text)  # curly quotes, dashes and ellipses are known
    words = counter.words("一只猫在睡觉", 0, 4)
    assert words.stop == 3  # the fourth ideograph may not end the run: it is left out
    assert words.ends[3] == 1  # but a cut after the third is still counted exactly
    long = "x" * 300 + " 猫"
    words = counter.words(long, 0, len(long))
    assert (words.stop, words.resume) == (0, 300)  # a word too long to count whole: the probes cut it


def test_clips_vocabulary_never_joins_two_ideographs(toy: ClipModel) -> None:
    from mmrag.model.tokens import _joins_ideographs

    counter = toy.token_counter
    assert counter._ideographs_split()  # type: ignore[attr-defined]
    assert _joins_ideographs("猫狗".encode()[1:5])  # the end of one ideograph and the start of the next
    assert _joins_ideographs("猫".encode()[1:] + "狗".encode()[:1])  # ending on the lead byte counts too
    assert not _joins_ideographs("と繋".encode())  # kana before an ideograph is no ideograph run
    assert not _joins_ideographs("猫の".encode())


def test_a_vocabulary_that_joins_ideographs_counts_runs_whole(toy: ClipModel, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmrag.model.tokens import TokenCounter, _build

    counter = _build(toy._ensure().tokenizer)
    assert isinstance(counter, TokenCounter)
    monkeypatch.setattr(counter, "_split", False)
    text = "一只猫在沙发上睡觉，窗外下着雨。" * 3
    words = counter.words(text, 0, len(text))
    assert [o for o, flag in enumerate(words.ends) if flag][:2] == [9, 10]  # the run, then the comma
    chunks = chunk_text(text, token_count=counter, max_tokens=16)
    check(text, chunks, toy.token_count, 16)


sparse_texts = st.lists(
    st.one_of(
        st.sampled_from(WORD_ALPHABET),
        st.text(alphabet="猫狗雨天的一是在不了人本生真", min_size=5, max_size=200),
        st.text(alphabet="abcdefghij", min_size=1, max_size=300),
    ),
    min_size=1,
    max_size=60,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=sparse_texts, max_tokens=st.sampled_from([8, 16, 32, 77]), overlap=st.integers(0, 12))
def test_invariants_hold_when_chunked_from_words(toy: ClipModel, text: str, max_tokens: int, overlap: int) -> None:
    chunks = chunk_text(text, token_count=toy.token_counter, max_tokens=max_tokens, overlap=overlap)
    check(text, chunks, toy.token_count, max_tokens)


class Recorded:
    """A WordCounter around CLIP's counter that records its calls, and the stretches of words asked for."""

    def __init__(self, counter: TokenCount) -> None:
        assert isinstance(counter, WordCounter)
        self.counter = counter
        self.calls: list[str] = []
        self.asked: list[int] = []  # each stretch's start
        self.spans: list[int] = []  # the characters each stretch covers

    def __call__(self, s: str) -> int:
        self.calls.append(s)
        return self.counter(s)

    def words(self, text: str, start: int, stop: int) -> Words:
        found = self.counter.words(text, start, stop)
        self.asked.append(start)
        self.spans.append(found.stop - start)
        return found


QUOTED = "他说：“人本来就生而自由，但无往不在枷锁之中。”她问：“真的吗？”……好吧——我们走，“明天见”。\n"


@pytest.mark.parametrize("prose", [CHINESE, QUOTED])
def test_chinese_is_chunked_from_words_without_probing(toy: ClipModel, prose: str) -> None:
    """The counter's words decide every cut of Chinese prose: no probe, and chunks as full as probing made them."""
    text = prose * 300
    for max_tokens in (32, 77):
        recorded = Recorded(toy.token_counter)
        chunks = chunk_text(text, token_count=recorded, max_tokens=max_tokens)
        check(text, chunks, toy.token_count, max_tokens)
        assert recorded.calls == []
        probed = chunk_text(text, token_count=toy.token_count, max_tokens=max_tokens)
        assert len(chunks) <= len(probed)  # never smaller chunks than the probes found
        # every cut is still at the strongest separator that fits: most chunks end a clause or sentence
        assert sum(c.text.rstrip("“”…—")[-1] in "。，！？；" for c in chunks) >= 0.6 * len(chunks)
        assert not any(c.text.startswith("”") for c in chunks)  # a closing quote stays with its sentence


def test_english_prose_is_probed() -> None:
    """Where spaces split the text into short pieces the counter has seen, probing is faster: words aren't asked."""

    class Words_:
        asked = 0

        def __call__(self, s: str) -> int:
            return wordish(s)

        def words(self, text: str, start: int, stop: int) -> Words:
            Words_.asked += 1
            raise AssertionError("not for English prose")

    chunks = chunk_text(PROSE * 20, token_count=Words_(), max_tokens=32)
    check(PROSE * 20, chunks, wordish, 32)
    assert Words_.asked == 0


@pytest.mark.parametrize("text", ["thequickbrownfox" * 8000, "“" + "x" * 50_000 + "猫" * 100])
def test_words_are_not_asked_again_and_again_inside_a_long_word(toy: ClipModel, text: str) -> None:
    """A word longer than a chunk is cut by the probes; the counter's words are asked once per stretch past it."""
    recorded = Recorded(toy.token_counter)
    chunks = chunk_text(text, token_count=recorded, max_tokens=32)
    check(text, chunks, toy.token_count, 32)
    assert len(recorded.asked) <= len(text) // 4096 + 3


@pytest.mark.parametrize(
    "text",
    [
        CHINESE * 2000,
        QUOTED * 1500,
        "一只猫在沙发上睡觉窗外下着雨" * 6000,
        "他说“" * 20_000,
        "x" * 150_000 + "猫。" * 50,
    ],
    ids=["chinese", "quoted", "no punctuation", "a quote after every word", "one long word, then chinese"],
)
def test_words_are_looked_up_about_once_a_character(toy: ClipModel, text: str) -> None:
    """No stretch of the text is split into words again and again, whatever its shape: the work stays linear."""
    recorded = Recorded(toy.token_counter)
    chunks = chunk_text(text, token_count=recorded, max_tokens=32)
    check(text, chunks, toy.token_count, 32)
    assert sum(recorded.spans) <= 2 * len(text) + 10_000
