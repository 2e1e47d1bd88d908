"""Upload checks: by content, by size, nothing kept when refused, same content kept once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from mmrag.config import Settings
from mmrag.errors import ConfigError, ImageError, ImageTooLargeError, UploadNotImageError, UploadTooLargeError
from mmrag.files.uploads import safe_stem, save_upload, upload_folder
from tests.support.files import shape_png


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buffer, format="JPEG")
    return buffer.getvalue()


def test_an_image_is_kept_by_content(tmp_path: Path) -> None:
    saved = save_upload("photo.png", shape_png(), tmp_path, max_mb=1)
    assert saved.format == "PNG"
    assert saved.path.parent == tmp_path
    assert saved.path.suffix == ".png"
    assert saved.path.read_bytes() == shape_png()
    again = save_upload("photo.png", shape_png(), tmp_path, max_mb=1)
    assert again.path == saved.path
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved.path.name]


def test_the_extension_comes_from_the_content(tmp_path: Path) -> None:
    saved = save_upload("actually-a-jpeg.png", jpeg_bytes(), tmp_path, max_mb=1)
    assert (saved.format, saved.path.suffix) == ("JPEG", ".jpg")


@pytest.mark.parametrize("data", [b"not a png at all", b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 10, b"%PDF-1.4 ..."])
def test_a_non_image_is_refused_and_nothing_is_kept(tmp_path: Path, data: bytes) -> None:
    with pytest.raises((UploadNotImageError, ImageError)) as info:
        save_upload("fake.png", data, tmp_path, max_mb=1)
    assert "fake.png" in str(info.value)
    assert not [p for p in tmp_path.iterdir() if p.is_file()]


def test_a_plain_text_png_is_an_upload_not_image_error(tmp_path: Path) -> None:
    with pytest.raises(UploadNotImageError, match=r"fake\.png is not an image"):
        save_upload("fake.png", b"hello", tmp_path, max_mb=1)


def test_size_limit(tmp_path: Path) -> None:
    with pytest.raises(UploadTooLargeError, match=r"big\.png .* over the 0\.001 MB upload limit.*MMRAG_MAX_UPLOAD_MB"):
        save_upload("big.png", shape_png(), tmp_path, max_mb=0.001)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, format="PNG")
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png"):
        save_upload("bomb.png", buffer.getvalue(), tmp_path, max_mb=5, max_megapixels=1)
    assert not list(tmp_path.iterdir())


def test_names_cannot_escape_the_folder(tmp_path: Path) -> None:
    assert safe_stem("../../etc/passwd.png") == "passwd"
    assert safe_stem("..\\..\\x y.png") == "x_y"
    assert safe_stem(".hidden.png") == "hidden"
    assert safe_stem("...") == "upload"
    saved = save_upload("../../evil.png", shape_png(), tmp_path / "up", max_mb=1)
    assert saved.path.parent == tmp_path / "up"


def test_settings_limit_and_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"MMRAG_MAX_UPLOAD_MB": "3.5"}, home=tmp_path)
    assert settings.max_upload_mb == 3.5
    assert upload_folder(settings) == tmp_path / "uploads"
    with pytest.raises(ConfigError, match="MMRAG_MAX_UPLOAD_MB"):
        Settings.from_env({"MMRAG_MAX_UPLOAD_MB": "0"})


def test_the_same_bytes_under_three_names_are_kept_once(tmp_path: Path) -> None:
    data = shape_png("blue-star")
    kept = [save_upload(name, data, tmp_path / "uploads", max_mb=5) for name in ("a.png", "b.png", "c.jpg")]
    assert len({k.path for k in kept}) == 1
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == [kept[0].path.name]
    assert [k.name for k in kept] == ["a.png", "b.png", "c.jpg"]  # each upload still reports its own name
