"""A reliability diagram of an evaluation: observed precision per score bin against the diagonal (Pillow only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from mmrag.search.evaluation import CalibrationBin

SIZE = 480
MARGIN = 48


def draw_reliability(bins: Sequence[CalibrationBin], path: Path, *, title: str = "") -> Path:
    """Write a PNG: bars of observed precision per score bin, the mean score of each as a dot, the diagonal."""
    image = Image.new("RGB", (SIZE, SIZE), "white")
    pen = ImageDraw.Draw(image)
    side = SIZE - 2 * MARGIN

    def at(x: float, y: float) -> tuple[float, float]:
        return MARGIN + x * side, SIZE - MARGIN - y * side

    pen.rectangle([at(0, 1), at(1, 0)], outline="black")
    pen.line([at(0, 0), at(1, 1)], fill=(150, 150, 150), width=1)
    for b in bins:
        pen.rectangle([at(b.low, b.precision), at(b.high, 0)], fill=(90, 140, 220), outline=(40, 70, 150))
        x, y = at(b.mean_score, b.mean_score)
        pen.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(220, 60, 40))
    for tick in range(0, 11, 2):
        x, y = at(tick / 10, 0)
        pen.text((x - 8, y + 6), f"{tick / 10:.1f}", fill="black")
        x, y = at(0, tick / 10)
        pen.text((x - 30, y - 6), f"{tick / 10:.1f}", fill="black")
    pen.text((MARGIN, 12), title or "reliability: observed precision (bars) per score bin", fill="black")
    pen.text((MARGIN + side / 2 - 20, SIZE - 18), "score", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
