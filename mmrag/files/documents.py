"""What a folder holds for a knowledge base: images, text documents, and captions for the images.

* **Images** are recognised by content (:func:`mmrag.files.images.image_format`), whatever their extension.
* **Text documents** are ``.txt``, ``.md`` / ``.markdown``, ``.pdf`` (PDF text via pypdf), and Word and PowerPoint
  ``.docx`` / ``.pptx`` files (text and pictures: :mod:`mmrag.files.office`).
* **Captions**: ``photo.jpg`` + ``photo.txt`` makes the text file the image's caption (it is not indexed
  as a document of its own). A ``captions.json`` file mapping file names to captions, in any folder,
  captions the images in that folder; a sidecar ``.txt`` wins over it.

Hidden files and folders (``.name``) and symbolic links are not followed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmrag.errors import DocumentError, UnreadableFileError
from mmrag.files.paths import source_of

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".pdf", ".docx", ".pptx"})
CAPTIONS_FILE = "captions.json"
MAX_CAPTION_CHARS = 1000


@dataclass(frozen=True)
class FileStat:
    """A file's path (absolute) and the cheap facts that tell whether it changed."""

    path: Path
    size: int
    mtime_ns: int

    @property
    def source(self) -> str:
        return source_of(self.path)


def walk(folder: Path, unreadable: list[Path] | None = None) -> Iterator[FileStat]:
    """Every regular file under ``folder``, skipping hidden entries and symbolic links, in sorted order.

    Args:
        unreadable: if given, the folders that couldn't be listed are appended to it (they are skipped: a
            caller must not take their files for deleted).
    """

    def failed(error: OSError) -> None:
        if unreadable is not None and error.filename is not None:
            unreadable.append(Path(os.fsdecode(error.filename)))

    for root, dirs, files in os.walk(folder, onerror=failed, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if path.is_symlink() or not path.is_file():
                continue
            yield FileStat(path, st.st_size, st.st_mtime_ns)


def check_readable(path: Path) -> None:
    """Open the file and read a byte: the test that permissions allow reading (``os.access`` says yes to root).

    Raises:
        UnreadableFileError: it can't be opened or read.
    """
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as e:
        msg = f"{path}: cannot be read ({e.strerror or e}); what the knowledge base holds for it is kept"
        raise UnreadableFileError(msg, path) from e


def is_text_document(path: Path) -> bool:
    return path.suffix.lower() in TEXT_SUFFIXES


def sidecar_caption_path(image: Path) -> Path | None:
    """The ``.txt`` next to an image with the same stem, if it exists."""
    for suffix in (".txt", ".TXT"):
        candidate = image.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def read_caption(image: Path, captions_files: dict[Path, dict[str, str]]) -> tuple[str, str]:
    """The caption of ``image`` and where it came from ("" and "" when it has none).

    Args:
        image: the image file.
        captions_files: parsed ``captions.json`` files by folder (see :func:`load_captions_file`).
    """
    sidecar = sidecar_caption_path(image)
    if sidecar is not None:
        try:
            text = sidecar.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        if text:
            return text[:MAX_CAPTION_CHARS], source_of(sidecar)
    mapping = captions_files.get(image.parent, {})
    caption = mapping.get(image.name, "").strip()
    if caption:
        return caption[:MAX_CAPTION_CHARS], source_of(image.parent / CAPTIONS_FILE)
    return "", ""


def load_captions_file(path: Path) -> dict[str, str]:
    """Parse a ``captions.json`` ({"file name": "caption"}).

    Raises:
        DocumentError: it is not a JSON object of strings.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        msg = f'{path}: not a readable captions file ({e}); expected a JSON object {{"photo.jpg": "caption"}}'
        raise DocumentError(msg, path) from e
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        msg = f"{path}: a captions file must be a JSON object mapping file names to caption strings"
        raise DocumentError(msg, path)
    return {str(k): v for k, v in data.items()}


def read_text(path: Path) -> str:
    """The text of a ``.txt``, ``.md``, ``.pdf``, ``.docx`` or ``.pptx`` document.

    Raises:
        DocumentError: the file can't be read, isn't valid UTF-8 text, or the PDF is damaged or empty.
    """
    if path.suffix.lower() == ".pdf":
        return _read_pdf(path)
    if path.suffix.lower() in (".docx", ".pptx"):
        from mmrag.files.office import read_office

        return "\n\n".join(p.text for p in read_office(path, pictures=False).parts if p.text.strip())
    try:
        data = path.read_bytes()
    except OSError as e:
        msg = f"{path}: cannot be read ({e.strerror or e}); what the knowledge base holds for it is kept"
        raise UnreadableFileError(msg, path) from e
    if b"\x00" in data[:8192]:
        msg = f"{path}: looks binary, not text (it contains NUL bytes)"
        raise DocumentError(msg, path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        msg = f"{path}: is not UTF-8 text ({e.reason} at byte {e.start})"
        raise DocumentError(msg, path) from e


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as e:  # pypdf raises more than PyPdfError on malformed files (AttributeError…)
        msg = f"{path}: not a readable PDF ({type(e).__name__}: {e})"
        raise DocumentError(msg, path) from e
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        msg = f"{path}: the PDF has no extractable text (scanned pages need OCR first)"
        raise DocumentError(msg, path)
    return text


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, hex.

    Raises:
        DocumentError: the file can't be read.
    """
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError as e:
        msg = f"{path}: cannot be read ({e.strerror or e}); what the knowledge base holds for it is kept"
        raise UnreadableFileError(msg, path) from e
    return digest.hexdigest()
