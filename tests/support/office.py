"""Generated Word and PowerPoint files for tests: text, tables, notes, pictures with captions or alt text, groups,
and bad ones (encrypted, not a ZIP, a ZIP bomb, a picture that is a decompression bomb)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def png(image: Image.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def bomb_png(side: int = 60_000) -> io.BytesIO:
    """A PNG whose header declares ``side`` × ``side`` pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return io.BytesIO(data)


@dataclass
class Picture:
    image: Image.Image | io.BytesIO
    caption: str = ""
    """A paragraph under the picture (Word), e.g. "Figure 1: ..."."""
    alt: str = ""
    """The picture's alt text."""


def write_docx(
    path: Path, paragraphs: list[str], pictures: list[Picture] | None = None, table: list[list[str]] | None = None
) -> Path:
    import docx
    from docx.shared import Inches

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    for picture in pictures or []:
        stream = picture.image if isinstance(picture.image, io.BytesIO) else png(picture.image)
        shape = document.add_picture(stream, width=Inches(3))
        if picture.alt:
            shape._inline.docPr.set("descr", picture.alt)
        if picture.caption:
            document.add_paragraph(picture.caption)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, text in enumerate(row):
                grid.cell(r, c).text = text
    document.save(str(path))
    return path


@dataclass
class Slide:
    title: str
    text: str = ""
    notes: str = ""
    pictures: list[Picture] = field(default_factory=list)
    grouped: bool = False
    """Put the pictures inside a group shape."""


def write_pptx(path: Path, slides: list[Slide]) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for spec in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
        slide.shapes.title.text = spec.title
        if spec.text:
            box = slide.shapes.add_textbox(Inches(0.5), Inches(1.5), Inches(9), Inches(1))
            box.text_frame.text = spec.text
        if spec.notes:
            slide.notes_slide.notes_text_frame.text = spec.notes
        target = slide.shapes.add_group_shape().shapes if spec.grouped else slide.shapes
        for i, picture in enumerate(spec.pictures):
            stream = picture.image if isinstance(picture.image, io.BytesIO) else png(picture.image)
            shape = target.add_picture(stream, Inches(1 + 3 * i), Inches(3), width=Inches(2.5))
            if picture.alt:
                shape._element.nvPicPr.cNvPr.set("descr", picture.alt)
    deck.save(str(path))
    return path


def zip_bomb_docx(path: Path, megabytes: int = 520) -> Path:
    """A ``.docx`` (a ZIP) with one part that inflates to ``megabytes`` MB of zeros."""
    zero = b"\x00" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/media/huge.bin", "w", force_zip64=True) as f:
            for _ in range(megabytes):
                f.write(zero)
    return path
