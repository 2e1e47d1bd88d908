"""Child processes that start in milliseconds: forked from a server that has already imported mmrag, torch and chromadb.

Importing torch, open_clip and chromadb takes 5-15 s on a loaded CI machine, and the reliability suite starts
about a hundred processes (``mmrag index`` killed with SIGKILL, readers and writers side by side, every command on a
damaged knowledge base). Each is therefore forked from one :mod:`multiprocessing` *forkserver* whose preloaded
modules are those imports, and runs a real command: ``mmrag.cli.main()`` with its own ``sys.argv``, environment,
working directory and stdout/stderr files, and the exit code that ``python -m mmrag`` would have (an uncaught
exception prints its traceback and exits 1, as the interpreter does). The server never opens a knowledge base or
runs torch, so each child starts with no Chroma instance, no open database and no thread pool of its own.

A job may also name a function of :mod:`tests.reliability.workers` instead of a command (a reader loop, a process
holding the write lock...), and *options* applied in the child first: ``drop_dac`` (root loses
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so ``chmod 000`` binds, as under ``setpriv``), ``offline`` (every
connection other than to loopback or a Unix socket fails, as on a machine with no network) and ``empty_hf_cache``
(the Hugging Face cache is an empty folder).

Every wait has a deadline: a job that outlives it is killed, and the test fails instead of hanging.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import io
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRELOAD = [
    "tests.reliability.workers",
    "torch",
    "open_clip",
    "chromadb",
    "chromadb.api.rust",
    "PIL.Image",
    "pypdf",
    "httpx",
    "filelock",
    "mmrag.cli",
    "mmrag.factory",
    "mmrag.kb.sync",
    "mmrag.kb.store",
    "mmrag.kb.client",
    "mmrag.model.clip",
    "mmrag.search.searcher",
    "mmrag.search.zeroshot",
    "mmrag.langchain.answer",
    "mmrag.langchain.retriever",
    "mmrag.toy.demo",
]


# --- inside the child -------------------------------------------------------------------------------------


def _drop_dac() -> None:
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this process (root then obeys file permissions)."""
    if os.geteuid() != 0:
        return

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # CAP_DAC_OVERRIDE = 1, CAP_DAC_READ_SEARCH = 2
    for field_name in ("effective", "permitted", "inheritable"):
        setattr(data[0], field_name, getattr(data[0], field_name) & keep)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


_REAL_CONNECT = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family == socket.AF_UNIX or (
        isinstance(address, tuple) and address and str(address[0]) in {"127.0.0.1", "::1", "localhost"}
    ):
        return _REAL_CONNECT(self, address)
    raise OSError(101, f"network is unreachable (blocked by the reliability suite): {address!r}")


def _offline() -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (None, "localhost", "127.0.0.1", "::1"):
            return real_getaddrinfo(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"no DNS here (blocked by the reliability suite): {host!r}")

    socket.getaddrinfo = getaddrinfo


def _empty_hf_cache() -> None:
    import huggingface_hub.constants as constants

    folder = tempfile.mkdtemp(prefix="empty-hf-cache-")
    constants.HF_HUB_CACHE = folder
    os.environ["HF_HUB_CACHE"] = folder


OPTIONS = {"drop_dac": _drop_dac, "offline": _offline, "empty_hf_cache": _empty_hf_cache}


def _redirect(fd: int, path: str) -> None:
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(target, fd)
    os.close(target)


def child_main(job: dict[str, Any]) -> None:
    """Run one job in this (forked) process, then exit with its code."""
    code = 1
    try:
        os.environ.clear()
        os.environ.update(job["env"])
        os.chdir(job["cwd"])
        _redirect(1, job["stdout"])
        _redirect(2, job["stderr"])
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=True)
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
        )
        for option in job["options"]:
            OPTIONS[option]()
        if job["argv"] is not None:
            from mmrag.cli import main

            sys.argv = ["mmrag", *job["argv"]]
            main()
        else:
            from tests.reliability import workers

            result = getattr(workers, job["func"])(**job["kwargs"])
            Path(job["result"]).write_text(json.dumps(result), encoding="utf-8")
        code = 0
    except SystemExit as e:
        if isinstance(e.code, int):
            code = e.code
        elif e.code is None:
            code = 0
        else:
            sys.stderr.write(f"{e.code}\n")
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# --- in the test process ----------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    seconds: float
    result: Any = None

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr


@dataclass
class Job:
    process: Any
    folder: Path
    started: float
    has_result: bool
    killed: bool = False
    ended: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def stdout_path(self) -> Path:
        return self.folder / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.folder / "stderr"

    def alive(self) -> bool:
        return bool(self.process.is_alive())

    def kill(self) -> None:
        """SIGKILL, as ``kill -9`` does."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.killed = True

    def wait(self, timeout: float) -> Result:
        """The job's exit code and output; a job still running after ``timeout`` seconds is killed, and fails."""
        self.process.join(timeout)
        if self.process.is_alive():
            self.kill()
            self.process.join(10)
            out, err = _read(self.stdout_path), _read(self.stderr_path)
            msg = f"job {self.pid} ran over its {timeout:.0f}s deadline and was killed\nstdout: {out}\nstderr: {err}"
            raise TimeoutError(msg)
        self.ended = self.ended or time.monotonic()
        code = self.process.exitcode
        result = None
        if self.has_result and code == 0:
            result = json.loads((self.folder / "result.json").read_text(encoding="utf-8"))
        return Result(
            int(code if code is not None else -999),
            _read(self.stdout_path),
            _read(self.stderr_path),
            self.ended - self.started,
            result,
        )


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


class Zygote:
    """Starts jobs as children of one preloaded forkserver (see the module doc)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self.count = 0

    def warm_up(self) -> None:
        """Start the server (its imports run in the background from here on)."""
        from multiprocessing import forkserver

        forkserver.ensure_running()

    def _start(
        self,
        *,
        argv: list[str] | None,
        func: str | None,
        kwargs: dict[str, Any] | None,
        env: dict[str, str] | None,
        cwd: Path | None,
        options: tuple[str, ...],
    ) -> Job:
        self.count += 1
        folder = self.scratch / f"job{self.count:04d}"
        folder.mkdir(parents=True)
        environment = dict(os.environ)
        environment.update(env or {})
        job = {
            "argv": argv,
            "func": func,
            "kwargs": kwargs or {},
            "env": environment,
            "cwd": str(cwd or folder),
            "stdout": str(folder / "stdout"),
            "stderr": str(folder / "stderr"),
            "result": str(folder / "result.json"),
            "options": list(options),
        }
        process = self.context.Process(target=child_main, args=(job,), daemon=True)
        started = time.monotonic()
        process.start()
        return Job(process, folder, started, has_result=func is not None)

    def cli(
        self,
        *argv: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        options: tuple[str, ...] = (),
    ) -> Job:
        """Start ``mmrag ARGV...``."""
        return self._start(argv=list(argv), func=None, kwargs=None, env=env, cwd=cwd, options=options)

    def call(
        self,
        func: str,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Job:
        """Start ``tests.reliability.workers.FUNC(**kwargs)``; its JSON return value comes back in the result."""
        return self._start(argv=None, func=func, kwargs=kwargs, env=env, cwd=None, options=options)

    def run(self, *argv: str, timeout: float = 120, **kw: Any) -> Result:
        return self.cli(*argv, **kw).wait(timeout)
