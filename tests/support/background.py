"""Slow real-process work, started as the session starts and run in one background thread while the
in-process tests run; the fixture that needs a job's result waits for it.

Most of the suite runs in the pytest process on one core; a few tests mostly wait for other processes (the
README's commands, an ONNX export, processes that exit mid-export). As jobs, those processes use the other
core meanwhile. A job starts only when a selected test uses its fixture (``pytest tests/unit/test_config.py``
starts none), and gets its folder and environment when the session starts, before any test changes
``os.environ``. Jobs run one at a time, in the order of :data:`tests.conftest.JOBS`; the tests that wait for
the last ones run at the end of the session (``tests/conftest.py``), which leaves the jobs time to finish.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Job:
    """``run(folder, environ, **needs)``, whose result the fixture called ``name`` returns; ``needs`` names the
    (session) fixtures whose values it takes. Jobs with the same ``folder`` share it (default: their own)."""

    name: str
    run: Callable[..., Any]
    needs: tuple[str, ...] = ()
    folder: str | None = None


class Background:
    def __init__(self, factory: pytest.TempPathFactory, environ: Mapping[str, str]) -> None:
        self._factory = factory
        self._environ = dict(environ)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tests-background")
        self._futures: dict[str, Future[Any]] = {}
        self._folders: dict[str, Path] = {}

    def start(self, job: Job, **needs: Any) -> None:
        if job.name not in self._futures:
            name = job.folder or job.name
            if name not in self._folders:
                self._folders[name] = self._factory.mktemp(name)
            self._futures[job.name] = self._pool.submit(job.run, self._folders[name], self._environ, **needs)

    def result(self, job: Job, **needs: Any) -> Any:
        """The job's result, waiting for it (and starting it, if no test wanted it at the session's start)."""
        self.start(job, **needs)
        return self._futures[job.name].result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
