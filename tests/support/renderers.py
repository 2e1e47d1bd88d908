"""Drawings of the toy world made another way than the toy's training renderer (and than its probe set).

Meaning must not be graded on the images a model was tuned on. These draw the same 24 classes as a person
might draw them with a marker: a wobbly hand-drawn shape filled with the class colour and outlined darker, on
lined or speckled paper, at sizes and aspect ratios the training renderer never uses, saved through JPEG.
"""

from __future__ import annotations

import io
import math
import random

from PIL import Image, ImageDraw, ImageFilter

from mmrag.toy.shapes import ToyClass


def sketch(cls: ToyClass, rng: random.Random) -> Image.Image:
    """A hand-drawn looking picture of ``cls`` (see the module doc)."""
    width, height = rng.choice(((300, 220), (220, 300), (256, 256), (400, 260)))
    paper = rng.randint(225, 250)
    canvas = Image.new("RGB", (width, height), (paper, paper - rng.randint(0, 8), paper - rng.randint(5, 18)))
    pen = ImageDraw.Draw(canvas)
    if rng.random() < 0.5:  # lined paper
        for y in range(20, height, 22):
            pen.line([(0, y), (width, y)], fill=(180, 195, 225), width=1)
    else:  # speckles
        for _ in range(width * height // 180):
            x, y = rng.randrange(width), rng.randrange(height)
            g = rng.randint(150, 210)
            pen.point((x, y), fill=(g, g, g))
    side = min(width, height)
    radius = rng.uniform(0.25, 0.38) * side
    # inside the central square: CLIP's preprocessing crops a wide frame to it, as it would a photo
    slack = side / 2 - radius - 4
    cx = width / 2 + rng.uniform(-slack, slack)
    cy = height / 2 + rng.uniform(-slack, slack)
    points = _outline(cls.shape.en, cx, cy, radius, rng)
    colour = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in cls.colour.rgb)
    fill = Image.new("RGB", (width, height), colour)
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).polygon(points, fill=255)
    canvas = Image.composite(fill, canvas, mask)
    pen = ImageDraw.Draw(canvas)
    pen.line([*points, points[0]], fill=tuple(int(c * 0.6) for c in colour), width=rng.randint(3, 6), joint="curve")
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=rng.randint(55, 85))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _outline(shape: str, cx: float, cy: float, radius: float, rng: random.Random) -> list[tuple[float, float]]:
    """The shape's outline as a wobbly polygon (a circle is 40 points)."""
    turn = rng.uniform(0, 2 * math.pi)
    if shape == "circle":
        corners = [(turn + 2 * math.pi * k / 40, radius) for k in range(40)]
    elif shape == "star":
        corners = [(turn + 2 * math.pi * k / 10, radius * (0.42 if k % 2 else 1.0)) for k in range(10)]
    else:
        n = 4 if shape == "square" else 3
        corners = [(turn + 2 * math.pi * k / n, radius) for k in range(n)]
    wobble = radius * 0.04
    return [
        (cx + r * math.cos(a) + rng.uniform(-wobble, wobble), cy + r * math.sin(a) + rng.uniform(-wobble, wobble))
        for a, r in corners
    ]
