"""ClipModel plumbing on a tiny random open_clip model loaded through local-dir:."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrag.errors import ImageError, ImageNotFoundError, UnsupportedImageError
from mmrag.model.clip import ClipModel, resolve_device

TEXTS = ["a", "a red circle", "一只猫", "日落海边", "", "word " * 400, "another caption here"]


def _images(tmp_path: Path, n: int = 6) -> list[str]:
    paths = []
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, size=(40 + 7 * i, 50 + 3 * i, 3), dtype=np.uint8)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(arr).save(path)
        paths.append(str(path))
    return paths


def test_construction_loads_nothing(tiny_model_id: str) -> None:
    clip = ClipModel(tiny_model_id)
    assert not clip.is_loaded
    assert "not loaded" in repr(clip)


def test_texts_are_unit_float32(tiny_clip: ClipModel) -> None:
    vectors = tiny_clip.encode_texts(TEXTS)
    assert vectors.shape == (len(TEXTS), tiny_clip.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_texts_batched_equal_one_by_one(tiny_clip: ClipModel) -> None:
    batched = tiny_clip.encode_texts(TEXTS)  # batch size 4: two batches of different content
    single = np.concatenate([tiny_clip.encode_texts([t]) for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_long_text_is_truncated_not_crashed(tiny_clip: ClipModel) -> None:
    long = "word " * 400
    assert tiny_clip.token_count(long) > tiny_clip.context_length
    truncated = tiny_clip.encode_texts([long])
    # Truncation keeps the start: the same text cut to fit gives the same vector.
    words_that_fit = tiny_clip.context_length - 2
    fitted = tiny_clip.encode_texts(["word " * words_that_fit])
    np.testing.assert_allclose(truncated, fitted, atol=1e-5)


def test_empty_inputs(tiny_clip: ClipModel) -> None:
    assert tiny_clip.encode_texts([]).shape == (0, tiny_clip.dim)
    assert tiny_clip.encode_images([]).shape == (0, tiny_clip.dim)


def test_one_string_is_refused(tiny_clip: ClipModel) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        tiny_clip.encode_texts("a red circle")  # type: ignore[arg-type]


def test_images_batched_equal_one_by_one(tiny_clip: ClipModel, tmp_path: Path) -> None:
    paths = _images(tmp_path)
    batched = tiny_clip.encode_images(paths)
    single = np.concatenate([tiny_clip.encode_images([p]) for p in paths])
    assert batched.shape == (len(paths), tiny_clip.dim)
    assert batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_images_from_path_bytes_and_pil_agree(tiny_clip: ClipModel, tmp_path: Path) -> None:
    path = _images(tmp_path, 1)[0]
    data = Path(path).read_bytes()
    with Image.open(path) as im:
        pil = im.copy()
    vectors = tiny_clip.encode_images([path, data, pil])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)


def test_bad_image_is_skipped_and_neighbours_stay_aligned(tiny_clip: ClipModel, tmp_path: Path) -> None:
    good = _images(tmp_path, 6)
    bad_text = tmp_path / "notes.jpg"
    bad_text.write_text("not an image")
    missing = tmp_path / "gone.png"
    inputs = [good[0], good[1], str(bad_text), good[2], good[3], str(missing), good[4], good[5]]
    seen: list[int] = []
    result = tiny_clip.try_encode_images(inputs, on_progress=seen.append)
    assert result.indices == [0, 1, 3, 4, 6, 7]
    assert [f.index for f in result.failures] == [2, 5]
    assert isinstance(result.failures[0].error, UnsupportedImageError)
    assert isinstance(result.failures[1].error, ImageNotFoundError)
    assert "notes.jpg" in str(result.failures[0].error)
    expected = tiny_clip.encode_images(good)
    np.testing.assert_allclose(result.vectors, expected, atol=1e-5)
    assert seen[-1] == len(inputs)


def test_strict_encode_raises_naming_the_file(tiny_clip: ClipModel, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ImageError, match=r"broken\.png"):
        tiny_clip.encode_images([*_images(tmp_path, 2), str(bad)])


def test_exif_rotated_photo_embeds_like_upright(tiny_clip: ClipModel, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    upright = Image.fromarray(rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8))
    upright.save(tmp_path / "upright.png")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 means: rotate 90° CW to display
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "rotated.png", exif=exif.tobytes())
    vectors = tiny_clip.encode_images([str(tmp_path / "upright.png"), str(tmp_path / "rotated.png")])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)
    plain = tiny_clip.encode_images([stored])
    assert not np.allclose(plain[0], vectors[0], atol=1e-3)  # the test would notice a missing transpose


def test_device_auto_is_cpu_here() -> None:
    assert resolve_device("auto") in {"cpu", "cuda", "mps"}
    assert resolve_device("cpu") == "cpu"


def test_properties(tiny_clip: ClipModel) -> None:
    assert tiny_clip.dim == 32
    assert tiny_clip.context_length == 24
    assert tiny_clip.image_size == 32
    assert tiny_clip.device == "cpu"
    assert tiny_clip.logit_scale == pytest.approx(1 / 0.07, rel=1e-3)
    assert tiny_clip.label.startswith("local-dir:")


def test_bf16_autocast_path_runs_on_cpu(tiny_model_id: str, tiny_clip: ClipModel, tmp_path: Path) -> None:
    """The path CUDA takes (bf16 autocast), exercised on the CPU: close to fp32, still unit float32."""
    bf16 = ClipModel(tiny_model_id, device="cpu", precision="bf16")
    paths = _images(tmp_path, 3)
    for ours, reference in [
        (bf16.encode_texts(TEXTS), tiny_clip.encode_texts(TEXTS)),
        (bf16.encode_images(paths), tiny_clip.encode_images(paths)),
    ]:
        assert ours.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        assert np.min(np.sum(ours * reference, axis=1)) > 0.98
        assert not np.allclose(ours, reference, atol=1e-6)  # it really ran in bf16


def test_bad_precision_is_refused() -> None:
    from mmrag.errors import ConfigError

    with pytest.raises(ConfigError, match="precision"):
        ClipModel("toy", precision="fp8")


def test_short_texts_skip_the_padding_but_match_full_length(tiny_clip: ClipModel) -> None:
    import torch

    loaded = tiny_clip._ensure()
    tokens = loaded.tokenizer(TEXTS)
    with torch.inference_mode():
        full = torch.nn.functional.normalize(loaded.model.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(tiny_clip.encode_texts(TEXTS), full, atol=1e-5)
    seen: list[int] = []
    original = loaded.model.transformer.forward

    def spy(x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        seen.append(x.shape[1])
        return original(x, *args, **kwargs)  # type: ignore[arg-type]

    loaded.model.transformer.forward = spy
    try:
        tiny_clip.encode_texts(["a cat"])
    finally:
        del loaded.model.transformer.forward
    assert seen == [4]  # start, "a", "cat", end: not the full context of 24


def test_query_threads_give_the_same_vectors_and_restore_torch(tiny_clip: ClipModel) -> None:
    import threading

    import torch

    from mmrag.model.clip import cpu_threads

    before = torch.get_num_threads()
    np.testing.assert_allclose(tiny_clip.encode_texts(TEXTS, threads=1), tiny_clip.encode_texts(TEXTS), atol=1e-5)
    assert torch.get_num_threads() == before
    inside: list[int] = []
    entered = threading.Barrier(2)

    def user() -> None:
        with cpu_threads(1):
            entered.wait()
            inside.append(torch.get_num_threads())
            entered.wait()

    workers = [threading.Thread(target=user) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert inside == [1, 1]
    assert torch.get_num_threads() == before  # overlapping users don't leave it stuck at 1
