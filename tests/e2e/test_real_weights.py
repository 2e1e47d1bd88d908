"""Checks that need real downloaded CLIP weights: skipped here, run with MMRAG_RUN_SLOW=1."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmrag.model.clip import ClipModel


def _red_disc() -> Image.Image:
    image = Image.new("RGB", (224, 224), "white")
    ImageDraw.Draw(image).ellipse((40, 40, 184, 184), fill=(220, 20, 20))
    return image


@pytest.mark.slow
def test_default_model_matches_text_and_image() -> None:
    clip = ClipModel()
    assert clip.label == "ViT-B-32/laion2b_s34b_b79k"
    assert clip.dim == 512
    image = clip.encode_images([_red_disc()])
    texts = clip.encode_texts(["a red circle", "a photo of a dog", "a blue car"])
    assert int(np.argmax(image @ texts.T)) == 0


@pytest.mark.slow
def test_multilingual_model_reads_chinese() -> None:
    clip = ClipModel("xlm-roberta-base-ViT-B-32")
    image = clip.encode_images([_red_disc()])
    texts = clip.encode_texts(["一个红色的圆形", "一只狗", "日落海边"])
    assert int(np.argmax(image @ texts.T)) == 0
