"""Typed errors raised by mmrag.

The library raises these and never prints or exits; the CLI and the UI turn them
into messages. Every message names the file, model or flag involved, and where it
helps, the flag or setting that changes the behaviour.
"""

from __future__ import annotations

from pathlib import Path


class MmragError(Exception):
    """Base class of every error mmrag raises on purpose."""


class ConfigError(MmragError):
    """A setting (flag, environment variable or argument) has an invalid value."""


# --- images -----------------------------------------------------------------------------


class ImageError(MmragError):
    """An image could not be used. ``path`` names it (or ``"<bytes>"`` for in-memory data)."""

    def __init__(self, message: str, path: str | Path = "<bytes>") -> None:
        super().__init__(message)
        self.path = str(path)


class ImageNotFoundError(ImageError):
    """The path does not exist, or is not a regular file."""


class UnsupportedImageError(ImageError):
    """The content is not an image, or is a format mmrag does not accept."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the decompression-bomb limit allows."""


class CorruptImageError(ImageError):
    """The file claims to be an image but is truncated or damaged."""


# --- models -----------------------------------------------------------------------------


class ModelError(MmragError):
    """A CLIP model could not be created, loaded or used."""


class UnknownModelError(ModelError):
    """The model name or pretrained tag is not known to open_clip."""


class ModelUnavailableError(ModelError):
    """The weights are neither cached locally nor downloadable (for example offline)."""


class TextRuntimeError(ModelError):
    """The ONNX Runtime text tower could not be prepared (missing package, failed export, or a mismatch)."""


class UnsafeCheckpointError(ModelError):
    """A checkpoint could not be loaded safely (only safetensors or weights_only pickles)."""


# --- knowledge base ---------------------------------------------------------------------


class DocumentError(MmragError):
    """A text document (.txt, .md, .pdf) could not be read. ``path`` names it."""

    def __init__(self, message: str, path: str | Path) -> None:
        super().__init__(message)
        self.path = str(path)


class UnreadableFileError(DocumentError):
    """A file or folder exists but can't be read (permissions, I/O). What the knowledge base holds for it is kept."""


class PdfError(DocumentError):
    """A PDF, or one part of it (a page, a figure), could not be read: encrypted, damaged, too many pages, or a
    figure past the decompression-bomb limit. The message names the file, the part and the setting that changes it."""


class OfficeError(DocumentError):
    """A Word or PowerPoint file (.docx, .pptx) could not be read: encrypted, damaged, a ZIP bomb, or its library
    (``mmrag[office]``) is missing. The message names the file."""


class OcrError(MmragError):
    """Text could not be read from an image (OCR). ``path`` names the image or the PDF page."""

    def __init__(self, message: str, path: str | Path = "") -> None:
        super().__init__(message)
        self.path = str(path)


class OcrUnavailableError(OcrError):
    """The OCR engine chosen (``ocr_engine``, env ``MMRAG_OCR_ENGINE``) or one of its languages is not installed."""


class OcrTimeoutError(OcrError):
    """OCR of one image ran past its time budget (``ocr_budget_s``, env ``MMRAG_OCR_BUDGET_S``)."""


class FolderRefusedError(ConfigError):
    """A sync was refused before it started: a system folder (``/``, ``/usr``…) or the home folder itself.
    ``force=True`` (``mmrag index --force``) indexes it anyway."""


class MassRemovalError(MmragError):
    """A folder sync would remove most of what the folder had (say, a drive that isn't mounted): nothing was
    changed. ``would_remove`` lists the sources; ``allow_removal=True`` (``--allow-removal``) goes ahead."""

    def __init__(self, message: str, would_remove: list[str]) -> None:
        super().__init__(message)
        self.would_remove = would_remove


class StoreError(MmragError):
    """The Chroma store could not be opened or reached."""


class CorruptStoreError(StoreError):
    """The embedded knowledge base's database file is damaged (truncated, zeroed or garbled). Restore a backup,
    or rebuild it from the folders: ``mmrag index FOLDER --rebuild``."""


class NoKnowledgeBaseError(StoreError):
    """A command that only reads was pointed at a place that holds no knowledge base (a mistyped ``--db``?).
    Nothing was created there."""


class ModelMismatchError(StoreError):
    """The knowledge base was built with another embedding model; mixing them would be meaningless."""


class KnowledgeBaseLockedError(StoreError):
    """Another process is writing to this embedded knowledge base."""


class IncompatibleCollectionError(StoreError):
    """A Chroma collection mmrag was pointed at can't be adopted: it measures distance in another space than
    cosine, or it holds vectors but no mmrag model record (it was built by another tool). The message names the
    collection and the fix."""


# --- tools, agents and answers ----------------------------------------------------------


class PathNotAllowedError(MmragError):
    """An image argument names something mmrag may not read: a URL, a path with ``..``, a hidden file,
    a NUL byte, a path outside the allowed roots, or a symlink leading out of them. Nothing was read.
    ``value`` is the argument as given."""

    def __init__(self, message: str, value: str) -> None:
        super().__init__(message)
        self.value = value


class LLMError(MmragError):
    """A chat model could not be used."""


class LLMUnavailableError(LLMError):
    """The chat model named by ``--llm`` / ``MMRAG_LLM`` can't be created: an unknown provider, its
    integration package not installed, or missing credentials."""


# --- uploads (the UI) -------------------------------------------------------------------


class UploadError(MmragError):
    """An uploaded file was refused. ``name`` is the file name the user gave; nothing was kept."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


class UploadTooLargeError(UploadError):
    """The upload is larger than the limit (``MMRAG_MAX_UPLOAD_MB``)."""


class UploadNotImageError(UploadError):
    """The upload's content is not an image mmrag accepts, whatever its name says."""
