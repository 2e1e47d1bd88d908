"""Query texts on ONNX Runtime: the text tower exported once per weights, cached on disk, checked against torch.

A query is one short text, and on a CPU its cost is the text tower's small matrix products. ONNX Runtime
runs them about twice as fast as torch here (torch's MKL takes a slow path on AMD CPUs; docs/benchmarks.md),
with the same vectors to ~1e-6. The export takes a while (~15 s for ViT-B-32), so it happens once per
model weights and is cached as ``<runtime_dir>/text-<weights hash>.onnx``; later processes only load it.

:class:`OnnxTextRuntime` goes idle → preparing → ready, or → failed with a reason. It prepares either in a
background thread (queries keep using torch meanwhile) or on demand, and it is only trusted once it agrees
with torch on probe texts.

The export runs in a child process (:mod:`mmrag.model.onnx_export`). The short in-process steps (hashing,
loading, checking) hold a lock that an ``atexit`` hook waits for.

:class:`QueryTextRuntime` decides, for one :class:`~mmrag.model.clip.ClipModel`, what encodes its query texts:
torch, or ONNX Runtime once that is ready (``text_runtime`` ``auto``, ``onnx`` or ``torch``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mmrag.config import TEXT_RUNTIMES
from mmrag.errors import ConfigError, TextRuntimeError
from mmrag.model.onnx_export import INSTALL_HINT, check_exporter, run_job, write_job
from mmrag.model.query_card import QueryCard, remove_card, tokenizer_spec
from mmrag.vectors import Matrix, empty, unit_rows

if TYPE_CHECKING:
    import torch

    from mmrag.model.text_tower import TextTower

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1
"""Bump when the exported graph changes, so that old cache files are not reused."""
TOLERANCE = 1e-4
"""Largest difference from torch (per component of unit vectors) that the exported tower may show."""
ONNX_QUERY_THREADS = min(2, os.cpu_count() or 1)
"""CPU threads for a query's texts on ONNX Runtime, whose threads sleep between calls (27% faster than one)."""
PROBE_TEXTS = ("a photo of a cat", "一只猫在沙发上睡觉, and a longer tail of words to vary the lengths")
"""Texts that the exported ONNX text tower must encode like torch before it is used."""


class OnnxTextTower:
    """An ONNX Runtime session over an exported text tower: int64 tokens (batch, positions) → features.

    Args:
        path: the ``.onnx`` file.
        threads: CPU threads per call. They sleep between calls (no spinning), so they never hold a core
            that Chroma or numpy needs next.
    """

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Basic optimisations only: loading ViT-B-32's text tower takes 0.5 s instead of 1.0 s with all of them,
        # and a query runs as fast (54 ms against 57 ms for 77 tokens, measured on 2 CPU threads).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, tokens: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        out = self._session.run(None, {self._input: np.ascontiguousarray(tokens, dtype=np.int64)})[0]
        return np.asarray(out, dtype=np.float32)


def weights_key(tower: torch.nn.Module) -> str:
    """A hash of the tower's weights, its shape and the exporter: what decides the exported graph."""
    import torch

    digest = hashlib.sha256(f"format {EXPORT_FORMAT}; torch {torch.__version__}".encode())
    for name, tensor in sorted(tower.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {data.dtype} {tuple(data.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:32]


_RUNTIMES: weakref.WeakSet[OnnxTextRuntime] = weakref.WeakSet()


@atexit.register
def _close_runtimes() -> None:
    for runtime in list(_RUNTIMES):
        runtime.close()


class _Closing(TextRuntimeError):
    """The process is exiting: in-process preparation stops."""


class OnnxTextRuntime:
    """Prepares one model's ONNX text tower, once, and says whether it is ready.

    Args:
        tower: the torch text tower (the reference, and what gets exported).
        probe: trimmed tokens of a few texts of different lengths, used to export and to check.
        cache_dir: where exported towers are kept.
        context_length: the model's longest token sequence.
        threads: CPU threads for each ONNX Runtime call.
        on_ready: called once with the checked session, in the thread that prepared it (to write the query
            card, :mod:`mmrag.model.query_card`); its failures are logged, never raised.
    """

    def __init__(
        self,
        tower: TextTower,
        probe: torch.Tensor,
        cache_dir: Path,
        *,
        context_length: int,
        threads: int = 1,
        on_ready: Callable[[OnnxTextTower], None] | None = None,
    ) -> None:
        self.tower = tower
        self.on_ready = on_ready
        self.probe = probe
        self.cache_dir = cache_dir
        self.context_length = context_length
        self.threads = threads
        self._session: OnnxTextTower | None = None
        self._error: TextRuntimeError | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy = threading.Lock()  # held while a step runs C++ work in this process
        self._closing = False
        self._exporting = False
        self._cache_file: Path | None = None
        _RUNTIMES.add(self)

    @property
    def session(self) -> OnnxTextTower | None:
        """The ready session, or None while preparing, before starting, or after a failure."""
        return self._session

    @property
    def status(self) -> str:
        if self._session is not None:
            return f"onnxruntime ({self._session.path.name})"
        if self._error is not None:
            return f"torch (onnxruntime unavailable: {self._error})"
        if self._exporting:
            return "torch (exporting the text tower for onnxruntime in a child process)"
        if self._thread is not None:
            return "torch (preparing onnxruntime in the background)"
        return "torch (onnxruntime not prepared yet)"

    def start(self) -> None:
        """Prepare in a background thread, once; returns at once. Failures are logged and kept in status."""
        with self._lock:
            if self._thread is not None or self._session is not None or self._error is not None:
                return
            self._thread = threading.Thread(target=self._prepare_quietly, name="mmrag-onnx-text", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop preparing: wait for an in-process step to end (a second or two) and start no other."""
        self._closing = True
        with self._busy:
            pass

    @contextlib.contextmanager
    def _step(self) -> Iterator[None]:
        with self._busy:
            if self._closing:
                msg = "the process is exiting"
                raise _Closing(msg)
            yield

    def prepare(self) -> OnnxTextTower:
        """Prepare now (or wait for the background preparation) and return the session.

        Raises:
            TextRuntimeError: ONNX Runtime or the exporter is missing, the export fails, or the exported
                tower disagrees with torch.
        """
        thread = self._thread
        if thread is not None:
            thread.join()
        self._build_once()
        if self._error is not None:
            raise self._error
        assert self._session is not None
        return self._session

    def _prepare_quietly(self) -> None:
        self._build_once()
        if self._error is not None and not isinstance(self._error, _Closing):
            log.warning("query texts stay on torch: %s", self._error)

    def _build_once(self) -> None:
        with self._lock:
            if self._session is not None or self._error is not None:
                return
            try:
                session = self._load_checked()
            except TextRuntimeError as e:
                self._error = e
                return
            except Exception as e:  # an unexpected failure must leave torch working, never break queries
                self._error = TextRuntimeError(f"{type(e).__name__}: {e}")
                return
            if self.on_ready is not None:
                try:
                    self.on_ready(session)
                except Exception as e:  # the card is an optimisation: never a reason to stay on torch
                    log.warning("could not write the query card for %s: %s", session.path, e)
            self._session = session

    def cache_file(self) -> Path:
        """Where this tower's export is cached (it may not exist yet); hashes the weights once."""
        if self._cache_file is None:
            self._cache_file = self.cache_dir / f"text-{weights_key(self.tower)}.onnx"
        return self._cache_file

    def _load_checked(self) -> OnnxTextTower:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            msg = f"the onnxruntime package is not installed: {INSTALL_HINT}"
            raise TextRuntimeError(msg) from e
        with self._step():
            path = self.cache_file()
            session = _try_load(path, self.threads)
        if session is None:
            check_exporter()
            with self._step():
                job = write_job(self.tower, self.probe, context_length=self.context_length)
            self._exporting = True
            try:
                run_job(job, path)
            finally:
                self._exporting = False
                shutil.rmtree(job.parent, ignore_errors=True)
            with self._step():
                session = OnnxTextTower(path, threads=self.threads)
        with self._step():
            difference = self._difference(session)
        if difference > TOLERANCE:
            path.unlink(missing_ok=True)
            msg = f"the exported text tower differs from torch by {difference:.2e} (> {TOLERANCE:.0e})"
            raise TextRuntimeError(msg)
        return session

    def _difference(self, session: OnnxTextTower) -> float:
        import torch

        with torch.no_grad():
            expected = unit_rows(self.tower(self.probe).float().numpy())
        got = unit_rows(session(self.probe.numpy()))
        return float(np.abs(expected - got).max())


def _try_load(path: Path, threads: int) -> OnnxTextTower | None:
    """The cached session, or None if there is none or it is unreadable (it is then removed)."""
    if not path.is_file():
        return None
    try:
        return OnnxTextTower(path, threads=threads)
    except Exception as e:  # a truncated or foreign file: export again
        log.warning("re-exporting the text tower: the cached %s is unreadable (%s)", path, e)
        path.unlink(missing_ok=True)
        return None


@dataclass(frozen=True)
class TextModel:
    """What the query-text runtime needs of a loaded model: where it runs, its text tower and tokenizer."""

    device: str
    """The torch device type: ``cpu``, ``cuda``, ``mps``…"""
    precision: str
    tower: TextTower | None
    """The trimmed text tower, or None for towers it can't run (e.g. Hugging Face ones)."""
    tokenizer: Any
    context_length: int
    dim: int = 0
    logit_scale: float = 0.0
    files: tuple[Path, ...] = ()
    """The weight files (for the query card; empty: write none)."""


class _CachedTexts:
    """A query card's export and the torch-free tokenizer: query texts before (or without) the torch model."""

    def __init__(self, card: QueryCard) -> None:
        from mmrag.model.clip_tokenizer import ClipTokenizer

        self.card = card
        tables = card.onnx.parent / "clip-bpe-tables.marshal"
        self.tokenizer = ClipTokenizer(card.context_length, card.clean, tables_cache=tables)
        self.session = OnnxTextTower(card.onnx, threads=ONNX_QUERY_THREADS)

    def encode(self, texts: Sequence[str], batch_size: int) -> Matrix:
        from mmrag.model.clip_tokenizer import trim

        out = [
            unit_rows(self.session(trim(self.tokenizer([str(t) for t in texts[start : start + batch_size]]))))
            for start in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out) if out else empty(self.card.dim)


class QueryTextRuntime:
    """What encodes one model's query texts on a CPU: torch, or ONNX Runtime once it is ready.

    A cached export with its query card (:mod:`mmrag.model.query_card`) serves query texts at once, even
    before the torch model loads (:meth:`encode_cached`: no torch import at all), in every mode but ``torch``.

    Args:
        mode: ``auto`` (torch until ONNX Runtime is prepared in the background, then ONNX Runtime), ``onnx``
            (prepare on first use and wait; raise if it can't be), ``cached`` (ONNX Runtime only if its export
            is already cached; never export), or ``torch``.
        cache_dir: where exported towers are kept.
        label: the model's label, for messages.
        card_key: the model choice's query-card key (:func:`~mmrag.model.query_card.card_key`); None: no card
            is read or written.
    """

    def __init__(self, mode: str, cache_dir: Path, *, label: str, card_key: str | None = None) -> None:
        if mode not in TEXT_RUNTIMES:
            msg = f"text runtime must be one of {', '.join(TEXT_RUNTIMES)}, got {mode!r}"
            raise ConfigError(msg)
        self.mode = mode
        self.cache_dir = cache_dir
        self.label = label
        self.card_key = card_key
        self._runtime: OnnxTextRuntime | None = None
        self._cached: _CachedTexts | None = None
        self._cached_failed = False
        self._lock = threading.Lock()

    @property
    def card(self) -> QueryCard | None:
        """The valid query card for this model, if any (always None in mode ``torch``)."""
        if self.mode == "torch" or self.card_key is None:
            return None
        if self._cached is not None:
            return self._cached.card
        return QueryCard.find(self.cache_dir, self.card_key)

    def encode_cached(self, texts: Sequence[str], batch_size: int) -> Matrix | None:
        """The texts' unit vectors from the cached export named by the query card, or None without one.

        Needs neither torch nor the loaded model. A card whose export fails to load is removed (the next
        preparation writes a new one).
        """
        cached = self._cached_texts()
        return cached.encode(texts, batch_size) if cached is not None else None

    def _cached_texts(self) -> _CachedTexts | None:
        if self._cached is not None or self._cached_failed:
            return self._cached
        with self._lock:
            if self._cached is None and not self._cached_failed:
                card = self.card
                if card is None:
                    self._cached_failed = True
                    return None
                try:
                    self._cached = _CachedTexts(card)
                except Exception as e:  # an unreadable export or vocabulary: torch encodes instead
                    log.warning("query texts stay on torch: the cached %s can't be used (%s)", card.onnx, e)
                    remove_card(self.cache_dir, self.card_key)
                    self._cached_failed = True
            return self._cached

    def encode(self, model: TextModel, texts: Sequence[str], batch_size: int) -> Matrix | None:
        """The texts' unit vectors from ONNX Runtime, or None when torch should encode them (not ready yet,
        not wanted, or not possible: a GPU, bf16, or a text tower it can't run).

        Raises:
            TextRuntimeError: ``mode="onnx"`` and ONNX Runtime can't be prepared.
        """
        if self.mode == "torch":
            return None
        if why_not_onnx(model) is None and (self._runtime is None or self._runtime.session is None):
            vectors = self.encode_cached(texts, batch_size)
            if vectors is not None:
                return vectors
        if self.mode == "cached":
            return None
        session = self._session(model)
        if session is None:
            return None
        from mmrag.model.text_tower import trim

        out = []
        for start in range(0, len(texts), batch_size):
            tokens = trim(model.tokenizer([str(t) for t in texts[start : start + batch_size]]))
            out.append(unit_rows(session(tokens.numpy())))
        return np.concatenate(out) if out else empty(0)

    def prepare(self, model: TextModel) -> None:
        """Prepare ONNX Runtime now (export or load the cached export) and wait.

        Raises:
            TextRuntimeError: it can't be prepared: ``mode="torch"``, a missing package, a failed or skewed
                export, or a model on a GPU, in bf16, or with a text tower it can't run.
        """
        if self.mode == "torch":
            msg = "text_runtime is torch (MMRAG_TEXT_RUNTIME=torch): query texts stay on torch"
            raise TextRuntimeError(msg)
        runtime = self._onnx(model, strict=True)
        assert runtime is not None
        runtime.prepare()

    def status(self, model: TextModel | None) -> str:
        """What encodes query texts now, e.g. ``onnxruntime (text-….onnx)`` or ``torch (why)``."""
        if self.mode == "torch":
            return "torch (text_runtime=torch)"
        if model is None:
            card = self.card
            return f"onnxruntime ({card.onnx.name})" if card is not None else "torch (model not loaded yet)"
        reason = why_not_onnx(model)
        if reason:
            return f"torch ({reason})"
        if self._runtime is not None and self._runtime.session is not None:
            return self._runtime.status
        card = self.card
        if card is not None:
            return f"onnxruntime ({card.onnx.name})"
        if self._runtime is not None:
            return self._runtime.status
        runtime = self._onnx(model, strict=False)
        if runtime is not None and runtime.cache_file().is_file():
            return f"torch (onnxruntime ready to load: {runtime.cache_file().name} is cached)"
        return "torch (onnxruntime not prepared yet)"

    def _session(self, model: TextModel) -> OnnxTextTower | None:
        if self.mode == "torch":
            return None
        runtime = self._onnx(model, strict=self.mode == "onnx")
        if runtime is None:
            return None
        if self.mode == "onnx":
            return runtime.prepare()
        runtime.start()
        return runtime.session

    def _onnx(self, model: TextModel, *, strict: bool) -> OnnxTextRuntime | None:
        reason = why_not_onnx(model)
        if reason:
            if strict:
                msg = f"query texts of model {self.label} can't run on ONNX Runtime: {reason}"
                raise TextRuntimeError(msg)
            return None
        assert model.tower is not None
        with self._lock:
            if self._runtime is None:
                from mmrag.model.text_tower import trim

                self._runtime = OnnxTextRuntime(
                    model.tower,
                    trim(model.tokenizer(list(PROBE_TEXTS))),
                    self.cache_dir,
                    context_length=model.context_length,
                    threads=ONNX_QUERY_THREADS,
                    on_ready=lambda session: self._write_card(model, session),
                )
            return self._runtime

    def _write_card(self, model: TextModel, session: OnnxTextTower) -> None:
        """Write the query card for a checked export, when the model's tokenizer has a torch-free twin."""
        if self.card_key is None or not model.files or not model.dim:
            return
        spec = tokenizer_spec(model.tokenizer)
        if spec is None:
            return
        card = QueryCard(self.label, session.path, model.dim, model.logit_scale, *spec)
        card.write(self.cache_dir, self.card_key, model.files)


def why_not_onnx(model: TextModel) -> str | None:
    """Why this model's query texts can't run on ONNX Runtime, or None when they can."""
    if model.device != "cpu":
        return f"the model runs on {model.device}"
    if model.precision == "bf16":
        return "precision is bf16"
    if model.tower is None:
        return "the text tower is not a plain causal CLIP one"
    return None
