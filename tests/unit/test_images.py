"""Tests for mmrag.files.images: safe decoding. Every fixture image is made with Pillow in tmp_path."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from mmrag.errors import (
    ConfigError,
    CorruptImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from mmrag.files.images import ALLOWED_FORMATS, ImageSource, describe, image_format, load_image

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)
ORIENTATION = 0x0112


# --- helpers ----------------------------------------------------------------------------


def _save(im: Image.Image, path: Path, fmt: str | None = None, **params: Any) -> Path:
    im.save(path, fmt, **params)
    return path


def _pattern(size: tuple[int, int] = (64, 32)) -> Image.Image:
    """An RGB image whose every rotation and flip looks different (solid 16x16 blocks, JPEG-friendly)."""
    im = Image.new("RGB", size, RED)
    w, h = size
    im.paste(GREEN, (w // 2, 0, w, h // 2))
    im.paste(BLUE, (w // 2, h // 2, w, h))
    im.paste(WHITE, (0, 0, 16, 16))
    return im


def _gradient() -> Image.Image:
    g = Image.linear_gradient("L")
    return Image.merge("RGB", (g, g.rotate(90), g.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def _pixels(im: Image.Image) -> np.ndarray[Any, Any]:
    return np.asarray(im, dtype=np.int16)


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.abs(_pixels(a) - _pixels(b)).mean())


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but that holds almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _raises(cls: type[ImageError], source: ImageSource, **kwargs: Any) -> ImageError:
    """Assert load_image raises ``cls``, an ImageError whose path and message name the source."""
    with pytest.raises(cls) as info:
        load_image(source, **kwargs)
    err = info.value
    assert isinstance(err, ImageError)
    assert err.path == describe(source)
    assert describe(source) in str(err)
    return err


# --- paths that are not images ------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    err = _raises(ImageNotFoundError, tmp_path / "nope.jpg")
    assert "does not exist" in str(err)


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "photos.jpg").mkdir()
    err = _raises(ImageNotFoundError, tmp_path / "photos.jpg")
    assert "directory" in str(err)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    err = _raises(UnsupportedImageError, path)
    assert "empty" in str(err)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 10)
    err = _raises(UnsupportedImageError, path)
    assert "JPEG" in str(err)  # lists what is accepted


@pytest.mark.parametrize(("fmt", "suffix"), [("ICO", ".ico"), ("PPM", ".ppm"), ("EPS", ".eps")])
def test_unsupported_real_format_is_named(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = _save(_pattern(), tmp_path / f"picture{suffix}", fmt)
    err = _raises(UnsupportedImageError, path)
    assert f"a {fmt} image" in str(err)
    assert "PNG" in str(err)
    assert image_format(path) is None


def test_pdf_is_unsupported(tmp_path: Path) -> None:
    path = _save(_pattern(), tmp_path / "doc.pdf", "PDF")
    _raises(UnsupportedImageError, path)


def test_png_with_jpg_extension_decodes(tmp_path: Path) -> None:
    path = _save(_pattern(), tmp_path / "really_a_png.jpg", "PNG")
    out = load_image(path)
    assert out.mode == "RGB"
    assert _mean_abs_diff(out, _pattern()) == 0
    assert image_format(path) == "PNG"


# --- damaged files ------------------------------------------------------------------------


def test_truncated_jpeg(tmp_path: Path) -> None:
    noise = Image.merge("RGB", [Image.effect_noise((128, 128), 64) for _ in range(3)])
    data = _save(noise, tmp_path / "full.jpg", quality=90).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    err = _raises(CorruptImageError, path)
    assert "truncated" in str(err)
    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_corrupt_png_pixel_data(tmp_path: Path) -> None:
    data = bytearray(_save(_gradient(), tmp_path / "ok.png").read_bytes())
    start = data.index(b"IDAT") + 4
    data[start + 100 : start + 400] = bytes(range(256)) + bytes(44)
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    _raises(CorruptImageError, path)


def test_corrupt_png_header(tmp_path: Path) -> None:
    data = bytearray(_save(_pattern(), tmp_path / "ok.png").read_bytes())
    data[18] ^= 0xFF  # inside IHDR: the checksum no longer matches
    path = tmp_path / "bad_header.png"
    path.write_bytes(bytes(data))
    err = _raises(CorruptImageError, path)
    assert "PNG" in str(err)


# --- decompression bombs ------------------------------------------------------------------


def test_limit_is_checked_from_the_header_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(10_000, 10_000))  # 100 MP declared, ~100 bytes on disk
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not leak
        err = _raises(ImageTooLargeError, path, max_megapixels=50)
    for part in (
        "10000x10000",
        "100.0 megapixels",
        "limit of 50",
        "--max-megapixels",
        "MMRAG_MAX_MEGAPIXELS",
    ):
        assert part in str(err)
    assert image_format(path) == "PNG"


def test_huge_declared_size_is_refused_by_pillow_guard_too(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(30_000, 30_000))  # 900 MP: over Pillow's own hard limit
    err = _raises(ImageTooLargeError, path)
    assert "--max-megapixels" in str(err)
    assert "MAX_IMAGE_PIXELS" in str(err)
    assert image_format(path) == "PNG"  # still an image: a folder scan must report it, not skip it


def test_small_wide_image_with_tiny_limit(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (2000, 10)), tmp_path / "wide.png")
    err = _raises(ImageTooLargeError, path, max_megapixels=0.01)
    assert "0.02 megapixels" in str(err) or "0.0 megapixels" in str(err)
    assert load_image(path, max_megapixels=0.03).size == (2000, 10)


def test_our_limit_governs_inside_pillows_warning_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warn above 1000 px, refuse above 2000 px
    path = _save(_pattern((40, 40)), tmp_path / "medium.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_image(path)
    assert out.size == (40, 40)
    assert Image.MAX_IMAGE_PIXELS == 1000  # left as the application set it


def test_pillow_bomb_error_becomes_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = _save(_pattern((50, 50)), tmp_path / "big.png")
    err = _raises(ImageTooLargeError, path)
    assert "--max-megapixels" in str(err)


def test_bad_settings() -> None:
    with pytest.raises(ConfigError):
        load_image(b"x", max_megapixels=0)
    with pytest.raises(ConfigError):
        load_image(b"x", min_side=0)


# --- pixel modes --------------------------------------------------------------------------


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    src = Image.fromarray(np.array([[0, 32768, 65535, 25700]], dtype=np.uint16))
    path = _save(src, tmp_path / "deep.png")
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")
        naive = _pixels(raw.convert("RGB"))[0, :, 0].tolist()
    out = load_image(path)
    assert _pixels(out)[0, :, 0].tolist() == [0, 128, 255, 100]
    assert naive != [0, 128, 255, 100]  # Pillow's own convert clips: the bug load_image avoids


def test_16bit_big_endian_in_memory() -> None:
    src = Image.frombytes("I;16B", (3, 1), struct.pack(">HHH", 65535, 32768, 0))
    assert _pixels(load_image(src))[0].tolist() == [[255] * 3, [128] * 3, [0] * 3]


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        ([0, 100, 255], np.int32, [0, 100, 255]),  # already 8-bit
        ([0, 1000, 65535], np.int32, [0, 4, 255]),  # 16-bit samples
        ([-100, 0, 155], np.int32, [0, 100, 255]),  # other ranges are stretched
        ([0.0, 0.5, 1.0], np.float32, [0, 128, 255]),  # fractions
        ([0.0, 100.0, 255.0], np.float32, [0, 100, 255]),
        ([-1.0, 0.0, 4.0], np.float32, [0, 51, 255]),
    ],
)
def test_int_and_float_modes(values: list[float], dtype: type, expected: list[int]) -> None:
    src = Image.fromarray(np.array([values], dtype=dtype))
    assert src.mode in ("I", "F")
    out = load_image(src)
    assert out.mode == "RGB"
    assert _pixels(out)[0, :, 1].tolist() == expected


@pytest.mark.parametrize("src", [Image.new("F", (2, 2), 1000.0), Image.new("I", (2, 2), -5)])
def test_constant_out_of_range_image(src: Image.Image) -> None:
    assert _pixels(load_image(src)).max() == 0  # no division by zero when stretching


def test_float_tiff_file(tmp_path: Path) -> None:
    path = _save(Image.fromarray(np.array([[0.0, 1.0]], dtype=np.float32)), tmp_path / "f.tif")
    assert _pixels(load_image(path))[0].tolist() == [[0] * 3, [255] * 3]


def test_one_bit(tmp_path: Path) -> None:
    src = Image.new("1", (2, 1))
    src.putpixel((1, 0), 1)
    out = load_image(_save(src, tmp_path / "bits.png"))
    assert out.mode == "RGB"
    assert _pixels(out)[0].tolist() == [list(BLACK), list(WHITE)]


def test_palette_with_transparent_index(tmp_path: Path) -> None:
    src = Image.new("P", (2, 1))
    src.putpalette([0, 0, 0, *RED])
    src.putpixel((1, 0), 1)
    out = load_image(_save(src, tmp_path / "pal.png", transparency=0))
    assert _pixels(out)[0].tolist() == [list(WHITE), list(RED)]


def test_rgba_alpha_composited_on_white(tmp_path: Path) -> None:
    src = Image.new("RGBA", (3, 1))
    src.putdata([(0, 0, 0, 0), (*RED, 255), (*BLUE, 128)])
    px = _pixels(load_image(_save(src, tmp_path / "alpha.png")))[0]
    assert px[0].tolist() == list(WHITE)
    assert px[1].tolist() == list(RED)
    assert np.abs(px[2] - np.array([127, 127, 255])).max() <= 1


def test_la_alpha_composited_on_white(tmp_path: Path) -> None:
    src = Image.new("LA", (3, 1))
    src.putdata([(0, 0), (0, 255), (0, 128)])
    px = _pixels(load_image(_save(src, tmp_path / "la.png")))[0, :, 0]
    assert px[:2].tolist() == [255, 0]
    assert abs(int(px[2]) - 127) <= 1


def test_rgb_png_with_transparent_colour(tmp_path: Path) -> None:
    src = Image.new("RGB", (2, 1), BLACK)
    src.putpixel((1, 0), RED)
    out = load_image(_save(src, tmp_path / "trns.png", transparency=BLACK))
    assert _pixels(out)[0].tolist() == [list(WHITE), list(RED)]


def test_pa_in_memory() -> None:
    src = Image.new("PA", (2, 1))
    src.putpalette([*RED, *GREEN])
    src.putpixel((0, 0), (0, 0))
    src.putpixel((1, 0), (1, 255))
    assert _pixels(load_image(src))[0].tolist() == [list(WHITE), list(GREEN)]


@pytest.mark.parametrize(("fmt", "tolerance"), [("JPEG", 10), ("TIFF", 0)])  # JPEG: Adobe-inverted CMYK
def test_cmyk(tmp_path: Path, fmt: str, tolerance: int) -> None:
    path = _save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "cmyk.img", fmt)
    out = load_image(path)
    assert np.abs(_pixels(out) - np.array(RED)).max() <= tolerance


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV"])
def test_other_colour_spaces(mode: str) -> None:
    src = Image.new("HSV", (4, 4), (0, 255, 255)) if mode == "HSV" else Image.new("RGB", (4, 4), RED).convert(mode)
    assert src.mode == mode
    out = load_image(src)
    assert np.abs(_pixels(out) - np.array(RED)).max() <= 6


# --- orientation and frames ---------------------------------------------------------------

# EXIF orientation -> how the stored pixels relate to the upright picture
STORED = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_orientation_png_exact(tmp_path: Path, orientation: int) -> None:
    upright = _pattern()
    stored = upright.transpose(STORED[orientation])
    path = _save(stored, tmp_path / "rotated.png", exif=_exif(orientation))
    out = load_image(path)
    assert out.size == upright.size
    assert _mean_abs_diff(out, upright) == 0


def test_exif_orientation_jpeg(tmp_path: Path) -> None:
    upright = _pattern((128, 64))
    path = _save(upright.transpose(STORED[8]), tmp_path / "rotated.jpg", quality=95, exif=_exif(8))
    out = load_image(path)
    assert out.size == upright.size
    assert _mean_abs_diff(out, upright) < 3
    assert _mean_abs_diff(out, upright.transpose(Image.Transpose.ROTATE_180)) > 50


@pytest.mark.parametrize(("fmt", "params"), [("GIF", {}), ("PNG", {}), ("WEBP", {"lossless": True})])
def test_animation_first_frame(tmp_path: Path, fmt: str, params: dict[str, Any]) -> None:
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    path = _save(frames[0], tmp_path / "anim.img", fmt, save_all=True, append_images=frames[1:], **params)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 2
    assert np.abs(_pixels(load_image(path)) - np.array(RED)).max() <= 2


def test_mpo_camera_file_counts_as_jpeg(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    path = _save(frames[0], tmp_path / "camera.jpg", "MPO", save_all=True, append_images=frames[1:])
    assert image_format(path) == "JPEG"
    assert np.abs(_pixels(load_image(path)) - np.array(RED)).max() <= 4


# --- formats and inputs -------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "params"), [("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {}), ("PNG", {})])
def test_lossless_round_trips(tmp_path: Path, fmt: str, params: dict[str, Any]) -> None:
    path = _save(_gradient(), tmp_path / "image.bin", fmt, **params)
    out = load_image(path)
    assert out.mode == "RGB"
    assert _mean_abs_diff(out, _gradient()) == 0


def test_result_holds_no_open_file(tmp_path: Path) -> None:
    out = load_image(_save(_pattern(), tmp_path / "x.png"))
    assert not isinstance(out, ImageFile.ImageFile)
    assert getattr(out, "fp", None) is None


def test_bytes_input(tmp_path: Path) -> None:
    data = _save(_pattern(), tmp_path / "x.png").read_bytes()
    assert _mean_abs_diff(load_image(data), _pattern()) == 0
    jpeg = io.BytesIO()
    _gradient().save(jpeg, "JPEG")
    _raises(CorruptImageError, jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    _raises(UnsupportedImageError, b"not an image at all")
    err = _raises(UnsupportedImageError, b"")
    assert err.path == "<bytes>"


def test_pil_image_input_is_converted_not_mutated() -> None:
    src = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    out = load_image(src)
    assert out is not src
    assert src.mode == "RGBA"
    assert _pixels(out).tolist() == [[list(WHITE)] * 2] * 2
    rgb = _pattern()
    assert load_image(rgb) is not rgb
    assert describe(src) == "<PIL image>"


@pytest.mark.parametrize("fmt", sorted(ALLOWED_FORMATS))
def test_image_format_identifies_allowed_formats_by_content(tmp_path: Path, fmt: str) -> None:
    path = _save(_pattern(), tmp_path / "no_extension", fmt)
    assert image_format(path) == fmt
    assert image_format(str(path)) == fmt


def test_image_format_returns_none_for_non_images(tmp_path: Path) -> None:
    text = tmp_path / "a.png"
    text.write_text("hello")
    empty = tmp_path / "b.jpg"
    empty.write_bytes(b"")
    for path in (text, empty, tmp_path / "missing.png", tmp_path):
        assert image_format(path) is None


# --- reduced-size JPEG decoding -----------------------------------------------------------


@pytest.fixture
def big_jpeg(tmp_path: Path) -> Path:
    im = Image.new("RGB", (4000, 3000), (200, 120, 40))
    im.paste(BLUE, (0, 0, 2000, 1500))
    return _save(im, tmp_path / "big.jpg", quality=80)


def test_min_side_decodes_jpeg_at_reduced_size(big_jpeg: Path) -> None:
    out = load_image(big_jpeg, min_side=224)
    assert out.mode == "RGB"
    assert min(out.size) >= 224
    assert min(out.size) < 3000 / 2
    assert out.size == (500, 375)  # 1/8 scale, the most that keeps both sides >= 224
    assert load_image(big_jpeg, min_side=1000).size == (2000, 1500)


def test_no_reduction_without_min_side(big_jpeg: Path) -> None:
    assert load_image(big_jpeg).size == (4000, 3000)


def test_min_side_respects_exif_rotation(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (4000, 3000), GREEN), tmp_path / "rot.jpg", exif=_exif(6))
    assert load_image(path, min_side=224).size == (375, 500)


def test_min_side_reduces_large_images_of_any_format_but_never_below_it(tmp_path: Path) -> None:
    from mmrag.files.images import original_size

    png = _save(Image.new("RGB", (1200, 900)), tmp_path / "big.png")
    reduced = load_image(png, min_side=224)
    assert reduced.size == (300, 225)  # reduced 4x right after decoding: both sides stay >= 224
    assert original_size(reduced) == (1200, 900)
    alpha = _save(Image.new("RGBA", (1000, 1000), (255, 0, 0, 128)), tmp_path / "alpha.png")
    assert load_image(alpha, min_side=224).size == (250, 250)
    assert load_image(png).size == (1200, 900)  # without min_side, the full image
    small = _save(Image.new("RGB", (300, 200)), tmp_path / "small.jpg")
    assert load_image(small, min_side=224).size == (300, 200)
    small_png = _save(Image.new("RGB", (400, 300)), tmp_path / "small.png")
    assert load_image(small_png, min_side=224).size == (400, 300)  # less than 2x to spare: untouched
