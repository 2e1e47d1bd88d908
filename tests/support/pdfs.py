"""Generated PDFs for tests and bench/: text pages, figures with captions, scanned pages, and bad ones.

Good PDFs are drawn with reportlab (BSD, a dev dependency); the bad ones (a declared 100,000 pages, a
decompression-bomb figure) are written by hand, object by object, with a correct xref table.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from tests.support.ocr_images import EN_FONTS, fonts_present, render

PAGE_W, PAGE_H = 612.0, 792.0  # US Letter, points


@dataclass
class PageSpec:
    """One page: its paragraphs, and figures as (caption, colour) drawn one under another."""

    text: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    scan: list[str] | None = None
    """Words shown only as pixels of a full-page picture (no text layer): a scanned page."""


def figure_image(colour: str, size: tuple[int, int] = (320, 200), label: str = "") -> Image.Image:
    """A simple chart-like picture in ``colour`` (bars on a white ground), optionally with a text label."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    for i in range(5):
        x = 20 + i * (w - 40) // 5
        draw.rectangle([x, h - 20 - (i + 1) * (h - 60) // 6, x + (w - 40) // 7, h - 20], fill=colour)
    draw.line([15, h - 20, w - 15, h - 20], fill="black", width=2)
    if label:
        draw.text((20, 10), label, fill="black")
    return image


def scan_image(words: list[str], side: int = 1400) -> Image.Image:
    """A page-shaped picture of ``words`` in a large font (what a scanner gives)."""
    font = fonts_present(EN_FONTS)[0]
    sample = render(words, font, 40, noise=4.0, per_line=4).image
    page = Image.new("RGB", (side, round(side * PAGE_H / PAGE_W)), "white")
    page.paste(sample, (60, 80))
    return page


def write_pdf(path: Path, pages: list[PageSpec], *, encrypt: str | None = None) -> Path:
    """A PDF of ``pages``: paragraphs at the top, figures below them with ``Figure n: caption`` under each."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=(PAGE_W, PAGE_H), encrypt=encrypt, invariant=1)
    number = 0
    for spec in pages:
        if spec.scan is not None:
            c.drawImage(ImageReader(scan_image(spec.scan)), 0, 0, PAGE_W, PAGE_H)
            c.showPage()
            continue
        y = PAGE_H - 60
        c.setFont("Helvetica", 11)
        for paragraph in spec.text:
            for line in _wrap(paragraph, 90):
                c.drawString(50, y, line)
                y -= 14
            y -= 8
        for caption, colour in spec.figures:
            number += 1
            height = 150
            y -= height + 10
            c.drawImage(ImageReader(figure_image(colour)), 120, y, 240, height)
            y -= 16
            c.setFont("Helvetica", 10)
            c.drawString(120, y, f"Figure {number}: {caption}")
            c.setFont("Helvetica", 11)
            y -= 20
        c.showPage()
    c.save()
    path.write_bytes(buffer.getvalue())
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def hand_pdf(objects: list[bytes]) -> bytes:
    """A PDF from numbered objects (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _text_page(text: str, parent: int = 2, extra_resources: bytes = b"", extra_content: bytes = b"") -> list[bytes]:
    """A page object (3), its content (4) and font (5), showing ``text``."""
    content = b"BT /F1 18 Tf 50 700 Td (" + text.encode("latin-1") + b") Tj ET\n" + extra_content
    return [
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> %s >> >>" % (parent, extra_resources),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def text_pdf(text: str) -> bytes:
    """A valid one-page PDF showing ``text`` (Latin-1) in Helvetica, written by hand (no reportlab)."""
    return hand_pdf(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", *_text_page(text)]
    )


def declared_pages_pdf(declared: int = 100_000) -> bytes:
    """One real page, while the page tree declares ``declared`` pages."""
    return hand_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % declared,
            *_text_page("A page tree that claims far too many pages"),
        ]
    )


def bomb_figure_pdf(side: int = 60_000) -> bytes:
    """A page with text and one figure that declares ``side`` x ``side`` pixels (a few KB compressed)."""
    stream = zlib.compress(b"\x00" * (side * 3 * 4), 9)  # the first rows; the decoder would allocate it all
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 "
        b"/Filter /FlateDecode /Length %d >>\nstream\n" % (side, side, len(stream)) + stream + b"\nendstream"
    )
    return hand_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            *_text_page(
                "This page has a figure that is a decompression bomb",
                extra_resources=b"/XObject << /Im1 6 0 R >>",
                extra_content=b"q 400 0 0 400 100 100 cm /Im1 Do Q\n",
            ),
            image,
        ]
    )
