"""Functions the reliability tests run in child processes (see :mod:`tests.reliability.zygote`)."""

from __future__ import annotations

import time
from typing import Any


def sleep(seconds: float) -> dict[str, Any]:
    time.sleep(seconds)
    return {"slept": seconds}


def interrupted_write(database: str) -> dict[str, Any]:
    """Start a large SQLite write transaction on ``database`` and die by SIGKILL before it commits.

    A one-page cache makes SQLite spill changed pages into the database file mid-transaction, which it may only do
    once the rollback journal is on disk: the kill leaves a *hot journal*, as a ``kill -9`` (or a power cut) during
    any Chroma write does. The next read-write open rolls it back; nothing is lost.
    """
    import os
    import signal
    import sqlite3

    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA cache_size=1")
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("CREATE TABLE interrupted(x BLOB)")
    connection.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
        "INSERT INTO interrupted SELECT randomblob(1000) FROM n"
    )
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def query_loop(db: str, home: str, model: str, ready: str, stop: str) -> dict[str, Any]:
    """Query a knowledge base in a loop until ``stop`` exists (``ready`` is written after the first query); then,
    a second later (readers look at the files at most once a second), what it sees."""
    from pathlib import Path

    from mmrag.factory import open_knowledge_base

    kb = open_knowledge_base(db=db, home=home, model=model, create=False, text_runtime="torch")
    queries = 0
    seen_counts = set()
    while not Path(stop).exists():
        kb.searcher.search("a noisy picture", k=5, threshold=0)
        seen_counts.add(kb.counts().images)
        queries += 1
        if queries == 1:
            Path(ready).write_text("1")
        time.sleep(0.01)
    time.sleep(1.2)
    first = kb.searcher.search("a noisy picture", k=100, modality="image", threshold=0).hits
    second = kb.searcher.search("a noisy picture", k=100, modality="image", threshold=0).hits
    return {
        "queries": queries,
        "counts": sorted(seen_counts),
        "images": kb.counts().images,
        "first_search": [h.source for h in first],
        "second_search": [h.source for h in second],
    }


def hold_lock(db: str, ready: str) -> dict[str, Any]:
    """Take a knowledge base's write lock as a writer does, say so, and keep it until killed."""
    from pathlib import Path

    from filelock import FileLock

    from mmrag.kb.client import LOCK_NAME

    lock = FileLock(str(Path(db) / LOCK_NAME))
    lock.acquire()
    Path(ready).write_text("1")
    time.sleep(600)
    return {}


def sync_folder(db: str, home: str, model: str, folder: str, allow_removal: bool = False) -> dict[str, Any]:
    """``kb.sync(folder)``; what the report says."""
    from mmrag.errors import MassRemovalError
    from mmrag.factory import open_knowledge_base

    kb = open_knowledge_base(db=db, home=home, model=model, text_runtime="torch")
    try:
        report = kb.sync(folder, allow_removal=allow_removal)
    except MassRemovalError as e:
        return {"refused": str(e), "would_remove": e.would_remove}
    return report.to_json()


def can_read(path: str) -> dict[str, Any]:
    """Whether this process can open ``path`` for reading (the control for the ``drop_dac`` option)."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except PermissionError as e:
        return {"readable": False, "error": str(e)}
    return {"readable": True}


def try_connect(host: str, port: int) -> dict[str, Any]:
    """Open a TCP connection (the control for the ``offline`` option)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=3):
            return {"connected": True}
    except OSError as e:
        return {"connected": False, "error": str(e)}


def hold_sqlite_lock(database: str, ready: str, seconds: float) -> dict[str, Any]:
    """Hold an exclusive SQLite transaction on ``database`` for ``seconds``, as a process in the middle of a long
    Chroma write (creating a new knowledge base's tables, say) does; then roll it back."""
    import sqlite3
    from pathlib import Path

    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    Path(ready).write_text("1")
    time.sleep(seconds)
    connection.execute("ROLLBACK")
    return {}
