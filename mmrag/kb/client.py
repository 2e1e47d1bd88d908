"""Opening Chroma for a knowledge base: an embedded ``PersistentClient`` or a ``chroma run`` server.

An embedded store is checked before Chroma opens it: a read-only command pointed at a directory that holds no
knowledge base gets :class:`~mmrag.errors.NoKnowledgeBaseError` (nothing is created there), and an empty or
garbled database file gets :class:`~mmrag.errors.CorruptStoreError` (Chroma would silently start afresh on a
zero-byte file). ``thorough`` runs SQLite's ``quick_check`` over the whole file.

A server gets a deadline on every call (``chroma_timeout``, env ``MMRAG_CHROMA_TIMEOUT``, 10 s by default):
chromadb's HTTP client waits forever, so a server that accepts connections but never answers would hang
mmrag. It is first probed with a plain heartbeat under that deadline, before chromadb's client (whose
constructor already talks to the server) is made, and the client's own HTTP session then gets the deadline.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mmrag.config import Settings
from mmrag.errors import ConfigError, CorruptStoreError, NoKnowledgeBaseError, StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

LOCK_NAME = "mmrag-write.lock"
OPEN_LOCK_NAME = "mmrag-open.lock"
"""Held while an embedded store is opened (and, when new, created and migrated), so two processes opening a new
knowledge base at once don't both run Chroma's migrations."""
DATABASE_FILE = "chroma.sqlite3"
SQLITE_HEADER = b"SQLite format 3\x00"
API_PATH = "/api/v2"


@dataclass(frozen=True)
class OpenedClient:
    """A chromadb client, where it points (for messages), the write-lock path and, for embedded stores, how to
    notice another process's writes."""

    client: ClientAPI
    location: str
    lock_path: Path | None
    freshness: Freshness | None = None


class Freshness:
    """Notices that another process wrote to an embedded knowledge base, and opens Chroma afresh.

    Embedded Chroma keeps its vector index in memory, so a long-running reader (the UI, ``mmrag chat``, a
    LangChain app) doesn't see another process's writes and, after them, fails with ``Error finding id``. The
    store asks :meth:`changed` before it reads (a ``stat`` of the database files, at most every ``interval``
    seconds) and after an unexpected Chroma error, and then reads through a new client.

    Args:
        db: the knowledge base directory.
        settings: chromadb's settings for the new client.
        interval: seconds between two looks at the files.
    """

    def __init__(self, db: Path, settings: Any, *, interval: float = 1.0) -> None:
        self.db = db
        self.settings = settings
        self.interval = interval
        self._seen = self._stamp()
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, ...]:
        stamps = []
        for name in (DATABASE_FILE, DATABASE_FILE + "-wal"):
            try:
                stamps.append((self.db / name).stat().st_mtime_ns)
            except OSError:
                stamps.append(0)
        return tuple(stamps)

    def changed(self, *, throttle: bool = True) -> bool:
        """Whether the files changed since this process last read or wrote them (with ``throttle``, looked at
        no more than every ``interval`` seconds)."""
        now = time.monotonic()
        if throttle and now - self._checked < self.interval:
            return False
        self._checked = now
        return self._stamp() != self._seen

    def mark_seen(self) -> None:
        """After this process's own writes: what is on disk now is what it knows."""
        self._seen = self._stamp()
        self._checked = time.monotonic()

    def reopen(self) -> ClientAPI:
        """A client that reads the knowledge base as it is on disk now."""
        import chromadb

        with self._lock:
            forget_embedded(self.db)
            client = chromadb.PersistentClient(path=str(self.db), settings=self.settings)
            self.mark_seen()
            return client


def open_chroma(settings: Settings, *, create: bool = True, thorough: bool = False) -> OpenedClient:
    """The Chroma client the settings name.

    Args:
        create: make an embedded knowledge base where none is yet; with False, a directory that holds none is
            an error (a mistyped ``--db`` must not leave an empty store behind).
        thorough: check the whole embedded database file (SQLite's ``quick_check``), not just its header.

    Raises:
        ConfigError: a malformed ``--chroma-url``.
        NoKnowledgeBaseError: ``create`` is False and the directory holds no knowledge base.
        CorruptStoreError: the embedded database file is empty, not a database, or (``thorough``) damaged.
        StoreError: the server can't be reached or doesn't answer in time, or the directory can't be opened.
    """
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        return _server(settings.chroma_url, settings.chroma_timeout, chroma_settings)
    db = settings.db_path
    check_database(db, create=create, thorough=thorough)
    return _embedded(db, chroma_settings)


def check_database(db: Path, *, create: bool = True, thorough: bool = False) -> None:
    """Refuse an embedded knowledge base whose database file is missing (unless ``create``) or damaged.

    Raises:
        NoKnowledgeBaseError, CorruptStoreError: see :func:`open_chroma`.
    """
    database = db / DATABASE_FILE
    if not database.exists():
        if create:
            return
        what = "does not exist" if not db.exists() else "holds no knowledge base"
        msg = (
            f"{db} {what} (no {DATABASE_FILE} there); nothing was created. Check --db / MMRAG_DB, or make one "
            "with `mmrag index FOLDER --db DIR` (or `mmrag demo`)"
        )
        raise NoKnowledgeBaseError(msg)
    try:
        with database.open("rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as e:
        msg = f"cannot read the knowledge base's database {database} ({e.strerror or e})"
        raise StoreError(msg) from e
    if not header and create and _only_an_empty_start(db):
        # What a kill -9 of the first `mmrag index` leaves when it lands between SQLite creating the file and
        # writing its first page: nothing was ever stored, so the knowledge base starts afresh.
        for name in (DATABASE_FILE, DATABASE_FILE + "-journal"):
            (db / name).unlink(missing_ok=True)
        return
    if header != SQLITE_HEADER:
        problem = "is empty (0 bytes)" if not header else "is not a SQLite database"
        msg = (
            f"the knowledge base's database {database} {problem}; restore it from a backup, or rebuild it from "
            "your folders with `mmrag index FOLDER --rebuild`"
        )
        raise CorruptStoreError(msg)
    if thorough:
        _quick_check(database)


def _only_an_empty_start(db: Path) -> bool:
    """Whether ``db`` holds nothing but an empty database file (and its journal and mmrag's lock file)."""
    allowed = {DATABASE_FILE, DATABASE_FILE + "-journal", LOCK_NAME, OPEN_LOCK_NAME}
    try:
        return all(p.name in allowed and p.is_file() for p in db.iterdir())
    except OSError:
        return False


def _quick_check(database: Path) -> None:
    import sqlite3

    try:
        # Read-write (never created): a hot journal left by a killed writer is rolled back first, as Chroma's own
        # open does; a read-only connection would call that knowledge base damaged.
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=rw", uri=True, timeout=30)) as connection:
            rows = connection.execute("PRAGMA quick_check").fetchall()
        problem = None if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:3])
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            msg = (
                f"the knowledge base's database {database} is busy: another process has been writing to it for "
                "over 30 s; try again when it is done"
            )
            raise StoreError(msg) from e
        problem = str(e)
    except sqlite3.DatabaseError as e:
        problem = str(e)
    if problem:
        msg = (
            f"the knowledge base's database {database} is damaged ({problem}); restore it from a backup, or "
            "rebuild it from your folders with `mmrag index FOLDER --rebuild`"
        )
        raise CorruptStoreError(msg)


def _server(address: str, timeout: float, chroma_settings: Any) -> OpenedClient:
    import chromadb
    import httpx

    url = urlparse(address)
    if url.scheme not in {"http", "https"} or not url.hostname:
        msg = f"--chroma-url must look like http://HOST:PORT, got {address!r}"
        raise ConfigError(msg)
    port = url.port or (443 if url.scheme == "https" else 8000)
    hint = "is `chroma run` running there? (a slow server: raise MMRAG_CHROMA_TIMEOUT)"
    try:
        httpx.get(f"{url.scheme}://{url.hostname}:{port}{API_PATH}/heartbeat", timeout=timeout).raise_for_status()
    except httpx.TimeoutException as e:
        msg = f"the Chroma server at {address} did not answer within {timeout:g} s; {hint}"
        raise StoreError(msg) from e
    except (httpx.HTTPError, OSError) as e:
        msg = f"cannot reach the Chroma server at {address} ({e}); {hint}"
        raise StoreError(msg) from e
    made: list[Any] = []
    host = url.hostname

    def construct() -> None:
        # chromadb's constructor asks the server for the user's identity, tenant and database with no deadline
        try:
            made.append(chromadb.HttpClient(host=host, port=port, ssl=url.scheme == "https", settings=chroma_settings))
        except Exception as e:
            made.append(e)

    worker = threading.Thread(target=construct, name="mmrag-chroma-connect", daemon=True)
    worker.start()
    worker.join(3 * timeout)  # the constructor makes three requests
    if not made:
        msg = f"the Chroma server at {address} answered its heartbeat, then nothing within {timeout:g} s; {hint}"
        raise StoreError(msg)
    try:
        if isinstance(made[0], Exception):
            raise made[0]
        client = made[0]
        set_timeout(client, timeout)
        client.heartbeat()
    except Exception as e:
        msg = f"cannot reach the Chroma server at {address} ({e}); {hint}"
        raise StoreError(msg) from e
    return OpenedClient(client, address, None)


def set_timeout(client: ClientAPI, timeout: float) -> bool:
    """Give every later call of a chromadb HTTP client a deadline. Returns whether the client had a session to
    set it on (chromadb keeps it private: ``client._server._session``, an ``httpx.Client``)."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        return False
    session.timeout = httpx.Timeout(timeout)
    return True


def forget_embedded(db: Path) -> None:
    """Make the next open of ``db`` in this process start a fresh Chroma instance.

    chromadb keeps one instance per directory for the life of the process (``SharedSystemClient``), so after the
    directory was replaced (a damaged knowledge base set aside), opening it again would still see the old one.
    Clients already open on ``db`` stop working; only call this when they are stale anyway.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    systems: dict[str, Any] = getattr(SharedSystemClient, "_identifier_to_system", {})
    systems.pop(str(db), None)


CORRUPTION_MARKERS = ("malformed", "not a database", "disk image", "database corruption", "file is encrypted")
"""What SQLite (through chromadb) says about a damaged database file."""
BUSY_WAIT_S = 30.0
"""How long opening waits while another process holds the database (two `mmrag index` creating one at once)."""


def corrupt_message(location: str) -> str:
    return (
        f"the knowledge base at {location} is damaged (its database file {DATABASE_FILE} is corrupt); restore it "
        "from a backup, or rebuild it from your folders with `mmrag index FOLDER --rebuild`"
    )


def is_rust_panic(error: BaseException) -> bool:
    """A panic inside chromadb's Rust core (``pyo3_runtime.PanicException`` derives from BaseException)."""
    return type(error).__name__ == "PanicException"


@contextlib.contextmanager
def _opening(db: Path) -> Iterator[None]:
    """The open lock, where it can be taken (a read-only folder opens without it)."""
    from filelock import FileLock, Timeout

    lock = FileLock(db / OPEN_LOCK_NAME)
    try:
        lock.acquire(timeout=BUSY_WAIT_S)
    except (OSError, Timeout):  # read-only, or held far too long: Chroma's own locking still applies
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _embedded(db: Path, chroma_settings: Any) -> OpenedClient:
    import chromadb

    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        try:
            db.mkdir(parents=True, exist_ok=True)
            with _opening(db):
                client = chromadb.PersistentClient(path=str(db), settings=chroma_settings)
            break
        except BaseException as e:
            if not isinstance(e, Exception) and not is_rust_panic(e):
                raise
            text = str(e).lower()
            if any(marker in text for marker in CORRUPTION_MARKERS):
                raise CorruptStoreError(corrupt_message(str(db))) from e
            if "database is locked" in text and time.monotonic() < deadline:
                forget_embedded(db)  # another process is creating or migrating it: wait, then open afresh
                time.sleep(0.2)
                continue
            msg = f"cannot open the knowledge base directory {db} ({e}); choose another with --db or MMRAG_DB"
            raise StoreError(msg) from e
    return OpenedClient(client, str(db), db / LOCK_NAME, Freshness(db, chroma_settings))
