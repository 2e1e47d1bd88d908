"""Query texts on ONNX Runtime: the text tower exported once per weights, cached on disk, checked against torch.

A query is one short text, and on a CPU its cost is the text tower's small matrix products. ONNX Runtime
runs them about twice as fast as torch here (torch's MKL takes a slow path on AMD CPUs; docs/benchmarks.md),
with the same vectors to ~1e-6. The export takes a while (~15 s for ViT-B-32), so it happens once per
model weights and is cached as ``<runtime_dir>/text-<weights hash>.onnx``; later processes only load it
(~0.5 s).

:class:`OnnxTextRuntime` goes idle → preparing → ready, or → failed with a reason. It prepares either in a
background thread (queries keep using torch meanwhile) or on demand, and it is only trusted once it agrees
with torch on probe texts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mmrag.errors import TextRuntimeError

if TYPE_CHECKING:
    import torch

    from mmrag.text_tower import TextTower

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1
"""Bump when the exported graph changes, so that old cache files are not reused."""
TOLERANCE = 1e-4
"""Largest difference from torch (per component of unit vectors) that the exported tower may show."""
INSTALL_HINT = "install them with `pip install onnxruntime onnx onnxscript`, or set MMRAG_TEXT_RUNTIME=torch"


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
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
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


def export(tower: TextTower, example: torch.Tensor, path: Path, *, context_length: int) -> None:
    """Export ``tower`` to ``path`` with dynamic batch and sequence sizes; written atomically.

    Args:
        example: trimmed tokens with at least 2 rows and 2 positions (size-1 dimensions get fixed).

    Raises:
        TextRuntimeError: the exporter is missing or fails on this model.
    """
    import torch

    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's dependency; fail early and clearly)
    except ImportError as e:
        msg = f"exporting the text tower to ONNX needs the onnx and onnxscript packages: {INSTALL_HINT}"
        raise TextRuntimeError(msg) from e
    batch = torch.export.Dim("batch", min=1, max=4096)
    positions = torch.export.Dim("positions", min=2, max=context_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                tower.eval(),
                (example,),
                dynamo=True,
                dynamic_shapes={"tokens": {0: batch, 1: positions}},
                input_names=["tokens"],
                output_names=["features"],
                verbose=False,
                optimize=True,
            )
        if program is None:
            msg = "torch.onnx.export returned no program"
            raise TextRuntimeError(msg)
        program.save(str(partial))
        partial.replace(path)
    except TextRuntimeError:
        raise
    except Exception as e:
        msg = f"could not export the text tower to ONNX ({type(e).__name__}: {e}); set MMRAG_TEXT_RUNTIME=torch"
        raise TextRuntimeError(msg) from e
    finally:
        partial.unlink(missing_ok=True)


class OnnxTextRuntime:
    """Prepares one model's ONNX text tower, once, and says whether it is ready.

    Args:
        tower: the torch text tower (the reference, and what gets exported).
        probe: trimmed tokens of a few texts of different lengths, used to export and to check.
        cache_dir: where exported towers are kept.
        context_length: the model's longest token sequence.
        threads: CPU threads for each ONNX Runtime call.
    """

    def __init__(
        self, tower: TextTower, probe: torch.Tensor, cache_dir: Path, *, context_length: int, threads: int = 1
    ) -> None:
        self.tower = tower
        self.probe = probe
        self.cache_dir = cache_dir
        self.context_length = context_length
        self.threads = threads
        self._session: OnnxTextTower | None = None
        self._error: TextRuntimeError | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

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

    def prepare(self) -> OnnxTextTower:
        """Prepare now (or wait for the background preparation) and return the session.

        Raises:
            TextRuntimeError: ONNX Runtime or the exporter is missing, the export fails, or the exported
                tower disagrees with torch.
        """
        thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            if self._session is None and self._error is None:
                self._build()
        if self._error is not None:
            raise self._error
        assert self._session is not None
        return self._session

    def _prepare_quietly(self) -> None:
        with self._lock:
            if self._session is None and self._error is None:
                self._build()
        if self._error is not None:
            log.warning("query texts stay on torch: %s", self._error)

    def _build(self) -> None:
        try:
            self._session = self._load_checked()
        except TextRuntimeError as e:
            self._error = e
        except Exception as e:  # an unexpected failure must leave torch working, never break queries
            self._error = TextRuntimeError(f"{type(e).__name__}: {e}")

    def _load_checked(self) -> OnnxTextTower:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            msg = f"the onnxruntime package is not installed: {INSTALL_HINT}"
            raise TextRuntimeError(msg) from e
        path = self.cache_dir / f"text-{weights_key(self.tower)}.onnx"
        session = _try_load(path, self.threads)
        if session is None:
            export(self.tower, self.probe, path, context_length=self.context_length)
            session = OnnxTextTower(path, threads=self.threads)
        difference = self._difference(session)
        if difference > TOLERANCE:
            path.unlink(missing_ok=True)
            msg = f"the exported text tower differs from torch by {difference:.2e} (> {TOLERANCE:.0e})"
            raise TextRuntimeError(msg)
        return session

    def _difference(self, session: OnnxTextTower) -> float:
        import torch

        with torch.no_grad():
            expected = _unit(self.tower(self.probe).float().numpy())
        got = _unit(session(self.probe.numpy()))
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


def _unit(features: Any) -> npt.NDArray[np.float32]:
    values = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    unit: npt.NDArray[np.float32] = (values / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit
