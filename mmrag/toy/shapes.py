"""The toy world: coloured shapes on plain backgrounds, with English and Chinese captions.

Six colours times four shapes give 24 classes. :func:`draw` renders one instance of a
class with a random size, position, rotation and background; :func:`make_dataset` draws
a deterministic labelled set. Only Pillow and :mod:`random` are used here (no torch), so
the world can be drawn wherever mmrag is imported.

Backgrounds are always nearly grey (at most :data:`MAX_BACKGROUND_CHROMA` between the
largest and smallest channel), while every shape colour is strongly saturated, so a
background can never be mistaken for the shape's colour.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw

RGB = tuple[int, int, int]

MAX_BACKGROUND_CHROMA = 36
"""Largest channel spread (max - min) of any background pixel before noise."""

COLOUR_JITTER = 14
"""Each channel of a shape's colour moves by up to this much per drawing."""

SUPERSAMPLE = 2
"""Shapes are drawn at this multiple of the output size, then downsampled (antialiasing)."""


@dataclass(frozen=True)
class Colour:
    """A named colour: English name, Chinese name, and its base RGB value."""

    en: str
    zh: str
    rgb: RGB


@dataclass(frozen=True)
class Shape:
    """A named shape: English and Chinese names."""

    en: str
    zh: str


@dataclass(frozen=True)
class ToyClass:
    """One class of the toy world: a colour and a shape (for example a red circle)."""

    colour: Colour
    shape: Shape

    @property
    def article(self) -> str:
        """The English indefinite article for this class ("a" or "an")."""
        return "an" if self.colour.en[0] in "aeiou" else "a"

    @property
    def caption_en(self) -> str:
        """The canonical English caption, for example ``"a red circle"``."""
        return f"{self.article} {self.colour.en} {self.shape.en}"

    @property
    def caption_zh(self) -> str:
        """The canonical Chinese caption, for example ``"一个红色的圆形"``."""
        return f"一个{self.colour.zh}的{self.shape.zh}"

    @property
    def label(self) -> str:
        """A short identifier, for example ``"red-circle"``."""
        return f"{self.colour.en}-{self.shape.en}"


COLOURS: tuple[Colour, ...] = (
    Colour("red", "红色", (220, 30, 30)),
    Colour("green", "绿色", (30, 170, 50)),
    Colour("blue", "蓝色", (35, 75, 225)),
    Colour("yellow", "黄色", (245, 215, 25)),
    Colour("purple", "紫色", (145, 45, 190)),
    Colour("orange", "橙色", (250, 135, 20)),
)

SHAPES: tuple[Shape, ...] = (
    Shape("circle", "圆形"),
    Shape("square", "正方形"),
    Shape("triangle", "三角形"),
    Shape("star", "星形"),
)

CLASSES: tuple[ToyClass, ...] = tuple(ToyClass(c, s) for c in COLOURS for s in SHAPES)
"""All 24 classes, colour-major, in a fixed order."""

EN_TEMPLATES: tuple[str, ...] = (
    "{a} {colour} {shape}",
    "{colour} {shape}",
    "a photo of {a} {colour} {shape}",
    "a picture of {a} {colour} {shape}",
    "{a} {colour} {shape} on a plain background",
    "a drawing of {a} {colour} {shape}",
)
"""English caption templates; fields ``{a}`` (article), ``{colour}`` and ``{shape}``."""

ZH_TEMPLATES: tuple[str, ...] = (
    "一个{colour}的{shape}",
    "{colour}的{shape}",
    "{colour}{shape}",
    "一张{colour}{shape}的图片",
    "图片里有一个{colour}的{shape}",
    "一个{colour}{shape}",
    "画着{colour}{shape}的图",
)
"""Chinese caption templates; fields ``{colour}`` and ``{shape}``."""


def fill_en(template: str, cls: ToyClass) -> str:
    """An English caption of ``cls`` from ``template`` (fields ``{a}``, ``{colour}``, ``{shape}``)."""
    return template.format(a=cls.article, colour=cls.colour.en, shape=cls.shape.en)


def fill_zh(template: str, cls: ToyClass) -> str:
    """A Chinese caption of ``cls`` from ``template`` (fields ``{colour}``, ``{shape}``)."""
    return template.format(colour=cls.colour.zh, shape=cls.shape.zh)


def captions_en(cls: ToyClass) -> list[str]:
    """Every English caption of ``cls``, one per template of :data:`EN_TEMPLATES`."""
    return [fill_en(t, cls) for t in EN_TEMPLATES]


def captions_zh(cls: ToyClass) -> list[str]:
    """Every Chinese caption of ``cls``, one per template of :data:`ZH_TEMPLATES`."""
    return [fill_zh(t, cls) for t in ZH_TEMPLATES]


def captions(cls: ToyClass) -> list[str]:
    """Every caption of ``cls``: the English ones, then the Chinese ones."""
    return captions_en(cls) + captions_zh(cls)


def _clamp(v: float) -> int:
    return max(0, min(255, round(v)))


def _jitter(rgb: RGB, rng: random.Random) -> RGB:
    r, g, b = (_clamp(c + rng.randint(-COLOUR_JITTER, COLOUR_JITTER)) for c in rgb)
    return (r, g, b)


def _grey_tint(level: float, rng: random.Random) -> RGB:
    """A nearly grey colour around ``level``, with a faint random tint."""
    half = MAX_BACKGROUND_CHROMA // 2
    r, g, b = (_clamp(level + rng.uniform(-half, half)) for _ in range(3))
    return (r, g, b)


def _background(size: int, rng: random.Random) -> Image.Image:
    """A plain, gradient or noisy near-grey background, light or dark."""
    dark = rng.random() < 0.3
    level = rng.uniform(25, 80) if dark else rng.uniform(165, 245)
    base = _grey_tint(level, rng)
    kind = rng.random()
    if kind < 0.5:
        return Image.new("RGB", (size, size), base)
    if kind < 0.8:
        other = _grey_tint(level + rng.uniform(-35, 35), rng)
        ramp = Image.linear_gradient("L").resize((size, size)).rotate(rng.choice((0, 90, 180, 270)))
        return Image.composite(Image.new("RGB", ramp.size, other), Image.new("RGB", ramp.size, base), ramp)
    amplitude = rng.uniform(10, 28)
    table = [_clamp(128 + (v - 128) * amplitude / 128) for v in range(256)]
    noise = Image.frombytes("L", (size, size), rng.randbytes(size * size)).point(table)
    grain = Image.merge("RGB", (noise, noise, noise))  # grey noise around 128: adds no tint
    return ImageChops.add(Image.new("RGB", (size, size), base), grain, scale=1.0, offset=-128)


def _polygon(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a regular shape with circumradius ``radius``, rotated by ``angle`` radians."""
    if shape == "square":
        corners, inner = 4, None
    elif shape == "triangle":
        corners, inner = 3, None
    else:  # star: five points, alternating outer and inner radius
        corners, inner = 5, radius * 0.42
    points: list[tuple[float, float]] = []
    step = 2 * math.pi / corners
    for i in range(corners):
        a = angle - math.pi / 2 + i * step
        points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
        if inner is not None:
            b = a + step / 2
            points.append((cx + inner * math.cos(b), cy + inner * math.sin(b)))
    return points


def draw(cls: ToyClass, rng: random.Random, size: int = 64) -> Image.Image:
    """Draw one instance of ``cls`` as a ``size`` x ``size`` RGB image.

    The shape's extent (its circumscribed circle) covers 35-80% of the image side, its
    position is random but it stays inside the image, squares, triangles and stars are
    rotated at random, and the colour is jittered slightly around :attr:`Colour.rgb`.
    The result is fully determined by the state of ``rng``.

    Args:
        cls: The class to draw.
        rng: The random source; pass ``random.Random(seed)`` for a reproducible image.
        size: The side of the square output image, in pixels.

    Returns:
        A new RGB image.
    """
    big = size * SUPERSAMPLE
    canvas = _background(big, rng)
    colour = _jitter(cls.colour.rgb, rng)
    radius = rng.uniform(0.35, 0.80) * big / 2
    cx = rng.uniform(radius, big - radius)
    cy = rng.uniform(radius, big - radius)
    pen = ImageDraw.Draw(canvas)
    if cls.shape.en == "circle":
        pen.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    else:
        pen.polygon(_polygon(cls.shape.en, cx, cy, radius, rng.uniform(0, 2 * math.pi)), fill=colour)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def make_dataset(n_per_class: int, seed: int, size: int = 64) -> list[tuple[Image.Image, ToyClass]]:
    """Draw ``n_per_class`` images of every class, deterministically from ``seed``.

    Args:
        n_per_class: Images per class (the set has ``24 * n_per_class`` items).
        seed: Seed of the random source; the same seed always gives the same images.
        size: Side of each image in pixels.

    Returns:
        ``(image, class)`` pairs, class-major in :data:`CLASSES` order.
    """
    rng = random.Random(seed)
    return [(draw(cls, rng, size), cls) for cls in CLASSES for _ in range(n_per_class)]
