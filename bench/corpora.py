"""The generated (seeded) texts the chunking benchmarks cut: English prose, Chinese prose, Chinese as written,
random letters and Chinese with no punctuation. No mmrag import, so any checkout can be timed on them."""

from __future__ import annotations

import random

_WORDS = (
    "the of and to in is was for on that with as by at from his her it an were are which this be or has had "
    "not but have they one their all also first new two after when who been its more other there some time "
    "city year people world house river garden morning evening window letter story music school family "
    "water light night road train market winter summer country village mountain island history language "
    "small large old young long short early late quiet bright dark warm cold green blue open simple "
    "walked found made told looked wrote built opened carried followed remembered described returned "
    "slowly quickly together almost always never often perhaps however because although through between "
    "photograph camera picture painting bridge station harbour forest meadow kitchen library museum"
)
WORDS = _WORDS.split(" ")
HANZI = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而"
    "方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好"
    "应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向"
    "道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特"
)


def english(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        sentences = []
        for _ in range(rng.randint(2, 8)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(5, 28))]
            if len(words) > 10 and rng.random() < 0.5:
                words[rng.randint(3, len(words) - 3)] += ","
            sentences.append(" ".join(words).capitalize() + rng.choice("....!?"))
        out.append(" ".join(sentences))
        length += len(out[-1]) + 2
    return "\n\n".join(out)


def chinese(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0  # in UTF-8 bytes: 3 a character
    while length < size:
        paragraph = []
        for _ in range(rng.randint(2, 8)):
            clauses = ["".join(rng.choice(HANZI) for _ in range(rng.randint(4, 14))) for _ in range(rng.randint(1, 4))]
            paragraph.append("，".join(clauses) + rng.choice("。。。！？"))
        out.append("".join(paragraph))
        length += 3 * len(out[-1]) + 1
    return "\n".join(out)


def chinese_as_written(rng: random.Random, size: int) -> str:
    """Chinese prose as documents have it: curly quotes, dashes, ellipses, enumeration commas, colons,
    digits and a Latin name now and then (with spaces around it)."""
    out: list[str] = []
    length = 0
    latin = ["CLIP", "Python", "GPU", "ViT-B-32", "Chroma", "PDF"]
    while length < size:
        paragraph = []
        for _ in range(rng.randint(2, 8)):
            clauses = []
            for _ in range(rng.randint(1, 4)):
                clause = "".join(rng.choice(HANZI) for _ in range(rng.randint(3, 12)))
                roll = rng.random()
                if roll < 0.12:
                    clause = f"“{clause}”"
                elif roll < 0.2:
                    clause += f" {rng.choice(latin)} "
                elif roll < 0.26:
                    clause = f"{rng.randint(1, 2030)}年{clause}"
                elif roll < 0.3:
                    clause += "、" + "".join(rng.choice(HANZI) for _ in range(2))
                clauses.append(clause)
            ending = rng.choice(["。", "。", "！", "？", "……", "——", "："])
            paragraph.append("，".join(clauses) + ending)
        out.append("".join(paragraph))
        length += 3 * len(out[-1]) + 1
    return "\n".join(out)


def letters(rng: random.Random, size: int) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=size))


def hanzi_run(rng: random.Random, size: int) -> str:
    return "".join(rng.choices(HANZI, k=size // 3))


CORPORA = {
    "English prose": english,
    "Chinese prose": chinese,
    "Chinese as written": chinese_as_written,
    "letters, no separator": letters,
    "Chinese, no punctuation": hanzi_run,
}
"""Name -> generator(rng, size in UTF-8 bytes)."""
