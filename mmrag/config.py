"""Settings: one frozen object, and the only place that reads ``MMRAG_*`` environment variables.

Every field has a default, an environment variable, and (in the CLI) a flag:

==================  ========================  ================================================
field               environment               meaning
==================  ========================  ================================================
``model``           ``MMRAG_MODEL``           open_clip name, ``hf-hub:…``, ``local-dir:…``, or
                                              ``toy``; None = the knowledge base's model, else
                                              ViT-B-32
``pretrained``      ``MMRAG_PRETRAINED``      open_clip tag or checkpoint file; None = the
                                              model's default tag; ``random`` = no weights
``device``          ``MMRAG_DEVICE``          ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``…
``precision``       ``MMRAG_PRECISION``       ``auto`` (bf16 autocast on CUDA, fp32 else),
                                              ``fp32`` or ``bf16``
``text_runtime``    ``MMRAG_TEXT_RUNTIME``    query texts on CPU: ``auto`` (ONNX Runtime once
                                              prepared in the background), ``onnx``,
                                              ``cached`` (only an export already cached) or
                                              ``torch``
``batch_size``      ``MMRAG_BATCH_SIZE``      images or texts per forward pass
``max_megapixels``  ``MMRAG_MAX_MEGAPIXELS``  decompression-bomb limit
``home``            ``MMRAG_HOME``            data directory (default knowledge base lives here)
``db``              ``MMRAG_DB``              embedded Chroma directory (default: ``home/kb``)
``chroma_url``      ``MMRAG_CHROMA_URL``      a ``chroma run`` server, e.g. http://127.0.0.1:8000
``chroma_timeout``  ``MMRAG_CHROMA_TIMEOUT``  seconds a Chroma server may take to answer a call
``collection``      ``MMRAG_COLLECTION``      the knowledge base's name inside Chroma
``llm``             ``MMRAG_LLM``             chat model as ``provider:model`` (e.g.
                                              ``openai:gpt-4o-mini``, ``ollama:llava``) for
                                              ``mmrag ask`` / ``chat``; None = retrieval only
``max_upload_mb``   ``MMRAG_MAX_UPLOAD_MB``   largest image the UI accepts as an upload, in MB
``ocr``             ``MMRAG_OCR``             read the text inside images and scanned PDF pages:
                                              ``auto`` (where the engine is installed), ``on``
                                              or ``off`` (flags --ocr / --no-ocr)
``ocr_engine``      ``MMRAG_OCR_ENGINE``      ``rapidocr`` (default) or ``tesseract``
``ocr_languages``   ``MMRAG_OCR_LANGUAGES``   Tesseract languages joined by ``+``
                                              (``eng+chi_sim``)
``ocr_budget_s``    ``MMRAG_OCR_BUDGET_S``    seconds OCR may spend on one image or page
``pdf_max_pages``   ``MMRAG_PDF_MAX_PAGES``   a PDF declaring more pages is skipped
==================  ========================  ================================================

See docs/pdf-ocr.md for PDFs and OCR.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmrag.errors import ConfigError

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
MULTILINGUAL_MODEL = "xlm-roberta-base-ViT-B-32"
MULTILINGUAL_PRETRAINED = "laion5b_s13b_b90k"
DEFAULT_TAGS = {DEFAULT_MODEL: DEFAULT_PRETRAINED, MULTILINGUAL_MODEL: MULTILINGUAL_PRETRAINED}
"""The pretrained tag a model gets when none is given."""
DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_MEGAPIXELS = 100.0
DEFAULT_COLLECTION = "mmrag"
DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_CHROMA_TIMEOUT_S = 10.0
TEXT_RUNTIMES = ("auto", "onnx", "cached", "torch")
OCR_MODES = ("auto", "on", "off")
OCR_ENGINES = ("rapidocr", "tesseract")
DEFAULT_OCR_ENGINE = "rapidocr"
DEFAULT_OCR_LANGUAGES = "eng+chi_sim"
DEFAULT_OCR_BUDGET_S = 30.0
DEFAULT_PDF_MAX_PAGES = 2000

_ENV: dict[str, tuple[str, type]] = {
    "model": ("MMRAG_MODEL", str),
    "pretrained": ("MMRAG_PRETRAINED", str),
    "device": ("MMRAG_DEVICE", str),
    "precision": ("MMRAG_PRECISION", str),
    "text_runtime": ("MMRAG_TEXT_RUNTIME", str),
    "batch_size": ("MMRAG_BATCH_SIZE", int),
    "max_megapixels": ("MMRAG_MAX_MEGAPIXELS", float),
    "home": ("MMRAG_HOME", Path),
    "db": ("MMRAG_DB", Path),
    "chroma_url": ("MMRAG_CHROMA_URL", str),
    "chroma_timeout": ("MMRAG_CHROMA_TIMEOUT", float),
    "collection": ("MMRAG_COLLECTION", str),
    "llm": ("MMRAG_LLM", str),
    "max_upload_mb": ("MMRAG_MAX_UPLOAD_MB", float),
    "ocr": ("MMRAG_OCR", str),
    "ocr_engine": ("MMRAG_OCR_ENGINE", str),
    "ocr_languages": ("MMRAG_OCR_LANGUAGES", str),
    "ocr_budget_s": ("MMRAG_OCR_BUDGET_S", float),
    "pdf_max_pages": ("MMRAG_PDF_MAX_PAGES", int),
}


def default_home() -> Path:
    """The per-user data directory (``MMRAG_HOME`` overrides it)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("mmrag", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """All of mmrag's settings. Build it with :meth:`from_env`; change it with :meth:`with_`."""

    model: str | None = None
    pretrained: str | None = None
    device: str = "auto"
    precision: str = "auto"
    text_runtime: str = "auto"
    batch_size: int = DEFAULT_BATCH_SIZE
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    home: Path = field(default_factory=default_home)
    db: Path | None = None
    chroma_url: str | None = None
    chroma_timeout: float = DEFAULT_CHROMA_TIMEOUT_S
    collection: str = DEFAULT_COLLECTION
    llm: str | None = None
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    ocr: str = "auto"
    ocr_engine: str = DEFAULT_OCR_ENGINE
    ocr_languages: str = DEFAULT_OCR_LANGUAGES
    ocr_budget_s: float = DEFAULT_OCR_BUDGET_S
    pdf_max_pages: int = DEFAULT_PDF_MAX_PAGES

    def __post_init__(self) -> None:
        # Accept plain strings for paths (open_knowledge_base(db="kb")).
        object.__setattr__(self, "home", Path(self.home).expanduser())
        if self.db is not None:
            object.__setattr__(self, "db", Path(self.db).expanduser())
        if self.text_runtime not in TEXT_RUNTIMES:
            choices = ", ".join(TEXT_RUNTIMES)
            msg = f"text runtime must be one of {choices}, got {self.text_runtime!r} (env MMRAG_TEXT_RUNTIME)"
            raise ConfigError(msg)
        if self.batch_size < 1:
            msg = f"batch size must be at least 1, got {self.batch_size} (flag --batch-size, env MMRAG_BATCH_SIZE)"
            raise ConfigError(msg)
        if self.max_megapixels <= 0:
            msg = (
                f"max megapixels must be positive, got {self.max_megapixels} "
                "(flag --max-megapixels, env MMRAG_MAX_MEGAPIXELS)"
            )
            raise ConfigError(msg)
        if self.max_upload_mb <= 0:
            msg = f"the upload limit must be positive, got {self.max_upload_mb} MB (env MMRAG_MAX_UPLOAD_MB)"
            raise ConfigError(msg)
        if not self.chroma_timeout > 0:
            msg = f"the Chroma server timeout must be positive, got {self.chroma_timeout} s (env MMRAG_CHROMA_TIMEOUT)"
            raise ConfigError(msg)
        self._check_ocr()
        if self.db is not None and self.chroma_url:
            msg = "choose one store: --db DIR (embedded Chroma) or --chroma-url URL (a Chroma server), not both"
            raise ConfigError(msg)

    def _check_ocr(self) -> None:
        if self.ocr not in OCR_MODES:
            msg = f"ocr must be one of {', '.join(OCR_MODES)}, got {self.ocr!r} (flags --ocr / --no-ocr, env MMRAG_OCR)"
            raise ConfigError(msg)
        if self.ocr_engine not in OCR_ENGINES:
            msg = (
                f"OCR engine must be one of {', '.join(OCR_ENGINES)}, got {self.ocr_engine!r} "
                "(flag --ocr-engine, env MMRAG_OCR_ENGINE)"
            )
            raise ConfigError(msg)
        if not re.fullmatch(r"[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*", self.ocr_languages):
            msg = (
                f"OCR languages must be Tesseract names joined by '+', like eng+chi_sim; got {self.ocr_languages!r} "
                "(flag --ocr-languages, env MMRAG_OCR_LANGUAGES)"
            )
            raise ConfigError(msg)
        if not self.ocr_budget_s > 0:
            msg = f"the OCR budget must be positive, got {self.ocr_budget_s} s (env MMRAG_OCR_BUDGET_S)"
            raise ConfigError(msg)
        if self.pdf_max_pages < 1:
            msg = f"pdf_max_pages must be at least 1, got {self.pdf_max_pages} (env MMRAG_PDF_MAX_PAGES)"
            raise ConfigError(msg)

    @property
    def model_name(self) -> str:
        """The model to use when no knowledge base says otherwise."""
        return self.model or DEFAULT_MODEL

    @property
    def db_path(self) -> Path:
        """The embedded Chroma directory."""
        return (self.db or self.home / "kb").expanduser()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``MMRAG_*`` variables, then apply ``overrides`` whose value is not None."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for name, (var, kind) in _ENV.items():
            raw = env.get(var)
            if raw:
                values[name] = _parse(kind, var, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _parse(kind: type, name: str, raw: str) -> Any:
    try:
        return Path(raw).expanduser() if kind is Path else kind(raw)
    except ValueError as e:
        msg = f"environment variable {name}={raw!r} is not a valid {kind.__name__}"
        raise ConfigError(msg) from e
