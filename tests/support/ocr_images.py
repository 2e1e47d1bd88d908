"""Generated images of text, for OCR measurements (tests and bench/ocr_quality.py share them).

Each sample is a few words rendered in one of several fonts and sizes, rotated by up to ±5°, with light
noise. The words are drawn at random from the lists below (a seed makes a set reproducible), so the
figures are not measured on phrases an engine was tuned on.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

EN_FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
]
ZH_FONTS = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
]
SIZES = (18, 24, 32, 44)

EN_WORDS = [
    "harbour",
    "lantern",
    "velvet",
    "quarry",
    "meadow",
    "copper",
    "whistle",
    "saddle",
    "orchard",
    "basalt",
    "thimble",
    "marble",
    "garnet",
    "falcon",
    "ribbon",
    "timber",
    "canyon",
    "pepper",
    "walnut",
    "signal",
    "parcel",
    "violet",
    "engine",
    "glacier",
    "barrel",
    "cotton",
    "ledger",
    "pigeon",
    "walrus",
    "fabric",
    "tunnel",
    "beacon",
    "cactus",
    "mortar",
    "sparrow",
    "kettle",
    "bramble",
    "rocket",
    "nickel",
    "turnip",
    "juniper",
    "compass",
    "hammock",
    "lobster",
    "pylon",
    "quartz",
    "raisin",
    "saffron",
    "tundra",
    "umber",
    "vessel",
    "zephyr",
    "anchor",
    "bishop",
    "candle",
    "dragon",
    "ember",
    "forest",
    "goblet",
    "hazel",
    "island",
    "jasmine",
    "kernel",
    "lemon",
    "mosaic",
    "nutmeg",
]
ZH_WORDS = [
    "图书馆",
    "火车站",
    "咖啡店",
    "自行车",
    "太阳能",
    "博物馆",
    "大熊猫",
    "长城",
    "西瓜",
    "月亮",
    "星期",
    "天气",
    "电脑",
    "手机",
    "医院",
    "学校",
    "公园",
    "森林",
    "河流",
    "山脉",
    "城市",
    "农村",
    "飞机",
    "轮船",
    "汽车",
    "地铁",
    "音乐",
    "电影",
    "绘画",
    "历史",
    "数学",
    "物理",
    "化学",
    "生物",
    "茶叶",
    "米饭",
    "面条",
    "饺子",
    "包子",
    "苹果",
    "香蕉",
    "葡萄",
    "草莓",
    "红色",
    "蓝色",
    "绿色",
    "黄色",
    "白色",
    "黑色",
    "春天",
    "夏天",
    "秋天",
    "冬天",
]


def fonts_present(fonts: list[str]) -> list[str]:
    return [f for f in fonts if Path(f).is_file()]


@dataclass(frozen=True)
class TextImage:
    """A rendered sample: the image and the words drawn on it."""

    image: Image.Image
    words: list[str]
    language: str
    font: str
    size: int
    angle: float


def render(
    words: list[str],
    font_path: str,
    size: int,
    *,
    angle: float = 0.0,
    noise: float = 8.0,
    seed: int = 0,
    language: str = "en",
    per_line: int = 4,
) -> TextImage:
    """``words`` on a white background in dark ink, ``per_line`` words a line, rotated by ``angle`` degrees."""
    font = ImageFont.truetype(font_path, size)
    sep = " " if language == "en" else "，"
    lines = [sep.join(words[i : i + per_line]) for i in range(0, len(words), per_line)]
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    boxes = [probe.textbbox((0, 0), line, font=font) for line in lines]
    width = max(b[2] for b in boxes) + 2 * size
    line_height = int(size * 1.6)
    height = line_height * len(lines) + 2 * size
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((size, size + i * line_height), line, font=font, fill=25)
    if angle:
        image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    if noise:
        rng = np.random.default_rng(seed)
        pixels = np.asarray(image, dtype=np.float32) + rng.normal(0.0, noise, (image.height, image.width))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return TextImage(image.convert("RGB"), words, language, Path(font_path).name, size, angle)


def samples(language: str, count: int, *, seed: int = 0, words_each: int = 8) -> list[TextImage]:
    """``count`` samples cycling through the fonts and sizes, each rotated by a random angle in ±5°."""
    rng = random.Random(seed)
    fonts = fonts_present(EN_FONTS if language == "en" else ZH_FONTS)
    if not fonts:
        msg = f"no {language} fonts installed (apt-get install fonts-dejavu-core fonts-liberation2 fonts-noto-cjk)"
        raise FileNotFoundError(msg)
    vocabulary = EN_WORDS if language == "en" else ZH_WORDS
    out = []
    for i in range(count):
        words = rng.sample(vocabulary, words_each)
        font = fonts[i % len(fonts)]
        size = SIZES[(i // len(fonts)) % len(SIZES)]
        angle = rng.uniform(-5.0, 5.0)
        out.append(render(words, font, size, angle=angle, seed=seed * 1000 + i, language=language))
    return out


def word_recall(expected: list[str], text: str) -> float:
    """The share of ``expected`` words found in ``text``: English as whole words (case-insensitive), Chinese
    as substrings of the text with its spaces removed."""
    if not expected:
        return 1.0
    tokens = set(re.findall(r"[a-z0-9]+", text.lower()))
    joined = "".join(text.split())
    found = sum(1 for w in expected if (w.lower() in tokens if w.isascii() else w in joined))
    return found / len(expected)
