"""The probe set: labelled image and text pairs any CLIP model can be measured on, to learn its score scale.

A raw cosine means different things for different models (the toy's relevant pairs sit near 0.95, real CLIP's
near 0.3) and for different pairs of modalities (the modality gap). To turn a cosine into "how likely is this
relevant", mmrag measures the model itself on pairs whose answer is known: drawings of the 24 shape classes
(two styles, several sizes and aspect ratios) and their English and Chinese captions.

From the probe it learns, per pair of modalities, which cosines relevant pairs get and which unrelated ones get
(see :mod:`mmrag.search.prior`). The probe is drawn from fixed seeds, so it, and every score built on it, is
deterministic.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

from mmrag.toy.shapes import CLASSES, EN_TEMPLATES, ZH_TEMPLATES, ToyClass, draw, fill_en, fill_zh

IMAGES_PER_STYLE = 2
SEED = 20261201


@dataclass(frozen=True)
class ProbeSet:
    """Probe images and captions with their class index (one per image, one per caption)."""

    images: list[Image.Image]
    image_classes: list[int]
    captions: list[str]
    caption_classes: list[int]


def probe_set() -> ProbeSet:
    """The deterministic probe: 4 drawings (two styles) and 13 captions (6 English, 7 Chinese) per class."""
    rng = random.Random(SEED)
    images: list[Image.Image] = []
    image_classes: list[int] = []
    captions: list[str] = []
    caption_classes: list[int] = []
    for i, cls in enumerate(CLASSES):
        for _ in range(IMAGES_PER_STYLE):
            images.append(draw(cls, rng, size=rng.choice((96, 160, 224))))
            image_classes.append(i)
        for _ in range(IMAGES_PER_STYLE):
            images.append(outlined(cls, rng))
            image_classes.append(i)
        for template in EN_TEMPLATES:
            captions.append(fill_en(template, cls))
            caption_classes.append(i)
        for template in ZH_TEMPLATES:
            captions.append(fill_zh(template, cls))
            caption_classes.append(i)
    return ProbeSet(images, image_classes, captions, caption_classes)


def outlined(cls: ToyClass, rng: random.Random) -> Image.Image:
    """A second drawing style: an outlined shape on a sloped grey background, in a non-square frame."""
    width, height = rng.choice(((240, 180), (180, 240), (200, 200), (320, 200)))
    canvas = Image.new("RGB", (width, height))
    pen = ImageDraw.Draw(canvas)
    top, bottom = rng.randint(140, 250), rng.randint(40, 220)
    for y in range(height):
        level = round(top + (bottom - top) * y / height)
        pen.line([(0, y), (width, y)], fill=(level, level, level))
    side = min(width, height)
    radius = rng.uniform(0.22, 0.4) * side
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    outline = (20, 20, 20) if top + bottom > 260 else (235, 235, 235)
    shape = cls.shape.en
    if shape == "circle":
        pen.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=cls.colour.rgb, outline=outline, width=3)
    else:
        corners = {"square": 4, "triangle": 3, "star": 10}[shape]
        turn = rng.uniform(0, 2 * math.pi)
        points = []
        for k in range(corners):
            r = radius * (0.45 if shape == "star" and k % 2 else 1.0)
            a = turn + 2 * math.pi * k / corners
            points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        pen.polygon(points, fill=cls.colour.rgb, outline=outline, width=3)
    return canvas.filter(ImageFilter.GaussianBlur(0.7))
