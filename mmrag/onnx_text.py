"""Query texts on ONNX Runtime: the text tower exported once per weights, cached on disk, checked against torch.

A query is one short text, and on a CPU its cost is the text tower's small matrix products. ONNX Runtime
runs them about twice as fast as torch here (torch's MKL takes a slow path on AMD CPUs; docs/benchmarks.md),
with the same vectors to ~1e-6. The export takes a while (~15 s for ViT-B-32), so it happens once per
model weights and is cached as ``<runtime_dir>/text-<weights hash>.onnx``; later processes only load it.

:class:`OnnxTextRuntime` goes idle → preparing → ready, or → failed with a reason. It prepares either in a
background thread (queries keep using torch meanwhile) or on demand, and it is only trusted once it agrees
with torch on probe texts.

The export runs in a child process (``python -m mmrag.cli.onnx_export``): it is long, Python-heavy work
that would hold the GIL against the queries being served, and a process that exits meanwhile must not be
held up or crash (C++ work in a daemon thread at interpreter exit aborts the process). The child finishes
the cache file even if its parent has gone. The short in-process steps (hashing, loading, checking) hold a
lock that an ``atexit`` hook waits for.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
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

    check_exporter()
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


def check_exporter() -> None:
    """Raise if the exporter's packages (onnx, onnxscript) are missing."""
    for name in ("onnx", "onnxscript"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            msg = f"exporting the text tower to ONNX needs the onnx and onnxscript packages: {INSTALL_HINT}"
            raise TextRuntimeError(msg)


def write_job(tower: TextTower, example: torch.Tensor, *, context_length: int) -> Path:
    """Save what the exporting child needs in a private temporary folder; returns the job file."""
    import torch

    folder = Path(tempfile.mkdtemp(prefix="mmrag-onnx-export-"))
    job = folder / "job.pt"
    torch.save({"tower": tower, "example": example, "context_length": context_length}, job)
    return job


def export_job(job: Path, path: Path) -> None:
    """Do a job that :func:`write_job` wrote (in the child): load it, remove it, export to ``path``.

    The job file is loaded as a full pickle: it is this library's own output, in a private folder.

    Raises:
        TextRuntimeError: the export fails.
    """
    import torch
    from filelock import FileLock

    spec = torch.load(job, weights_only=False)
    job.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # another process may be exporting the same weights
        if not path.is_file():
            export(spec["tower"], spec["example"], path, context_length=spec["context_length"])


def run_job(job: Path, path: Path, *, timeout: float = 1800) -> None:
    """Export in a child process and wait for it (a plain wait: safe while the interpreter exits).

    Raises:
        TextRuntimeError: the child failed (with the reason it left in error.txt) or timed out.
    """
    # No pipes: the child must be able to finish (and write the cache) after this process has gone.
    command = [sys.executable, "-m", "mmrag.cli.onnx_export", str(job), str(path), str(os.getpid())]
    try:
        done = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=timeout, start_new_session=True, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        msg = f"exporting the text tower took over {timeout:.0f} s; set MMRAG_TEXT_RUNTIME=torch"
        raise TextRuntimeError(msg) from e
    if done.returncode != 0 or not path.is_file():
        error = job.with_name("error.txt")
        reason = error.read_text().strip() if error.is_file() else f"the exporter exited with {done.returncode}"
        msg = f"exporting the text tower failed: {reason}"
        raise TextRuntimeError(msg)


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
        self._busy = threading.Lock()  # held while a step runs C++ work in this process
        self._closing = False
        self._exporting = False
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
        with self._step():
            path = self.cache_dir / f"text-{weights_key(self.tower)}.onnx"
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


def unit_rows(features: Any) -> npt.NDArray[np.float32]:
    """``features`` as float32 rows of length 1."""
    values = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(values, axis=-1, keepdims=True)
    unit: npt.NDArray[np.float32] = (values / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit
