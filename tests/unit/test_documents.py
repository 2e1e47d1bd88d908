"""Reading text documents (txt, md, pdf), captions, and chunking to CLIP's context."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mmrag.errors import DocumentError
from mmrag.files.chunking import chunk_text
from mmrag.files.documents import load_captions_file, read_caption, read_text, walk
from mmrag.model.clip import ClipModel
from tests.support.pdfs import text_pdf


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(text_pdf("Espresso has crema on top"))
    assert "Espresso has crema on top" in read_text(path)


def test_damaged_pdf_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(DocumentError, match=r"bad\.pdf"):
        read_text(path)


def test_text_files(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("\ufeff# Title\n一只猫", encoding="utf-8")
    assert read_text(tmp_path / "a.md") == "# Title\n一只猫"  # BOM dropped
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DocumentError, match="binary"):
        read_text(tmp_path / "b.txt")


def test_captions(tmp_path: Path) -> None:
    (tmp_path / "cat.jpg").write_bytes(b"")
    (tmp_path / "dog.jpg").write_bytes(b"")
    (tmp_path / "cat.txt").write_text("  a cat on a sofa \n")
    (tmp_path / "captions.json").write_text('{"dog.jpg": "a dog", "cat.jpg": "ignored: the sidecar wins"}')
    files = {tmp_path: load_captions_file(tmp_path / "captions.json")}
    assert read_caption(tmp_path / "cat.jpg", files) == ("a cat on a sofa", (tmp_path / "cat.txt").as_posix())
    assert read_caption(tmp_path / "dog.jpg", files)[0] == "a dog"
    (tmp_path / "captions.json").write_text('["not", "a", "mapping"]')
    with pytest.raises(DocumentError, match="JSON object"):
        load_captions_file(tmp_path / "captions.json")


def test_walk_skips_hidden_and_symlinks(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / ".hidden.txt").write_text("h")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "link.txt").symlink_to("/etc/hostname")
    assert [f.path.name for f in walk(tmp_path)] == ["a.txt", "b.txt"]


@pytest.mark.parametrize("text", ["", "   ", "word", "一只猫在沙发上睡觉。" * 40, "Sentence one. " * 200])
def test_chunks_fit_the_context_and_cover_the_text(tiny_clip: ClipModel, text: str) -> None:
    chunks = chunk_text(text, token_count=tiny_clip.token_count, max_tokens=tiny_clip.context_length)
    assert all(tiny_clip.token_count(c.text) <= tiny_clip.context_length for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(text.strip()[c.start :].startswith(c.text) for c in chunks)
    joined = "".join(c.text for c in chunks).replace(" ", "")
    assert set(text.replace(" ", "")) <= set(joined) | {""}
    if text.strip():
        assert chunks[0].text.split()[0] == text.split()[0][: len(chunks[0].text.split()[0])]


def test_neighbouring_chunks_overlap(tiny_clip: ClipModel) -> None:
    text = " ".join(f"word{i}" for i in range(200))
    chunks = chunk_text(text, token_count=tiny_clip.token_count, max_tokens=tiny_clip.context_length, overlap=5)
    assert len(chunks) > 3
    for a, b in itertools.pairwise(chunks):
        assert a.text.split()[-1] in b.text.split()  # the boundary word appears in both
