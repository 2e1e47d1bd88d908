"""Opening Chroma for a knowledge base: an embedded ``PersistentClient`` or a ``chroma run`` server.

A server gets a deadline on every call (``chroma_timeout``, env ``MMRAG_CHROMA_TIMEOUT``, 10 s by default):
chromadb's HTTP client waits forever, so a server that accepts connections but never answers would hang
mmrag. It is first probed with a plain heartbeat under that deadline, before chromadb's client (whose
constructor already talks to the server) is made, and the client's own HTTP session then gets the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mmrag.config import Settings
from mmrag.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

LOCK_NAME = "mmrag-write.lock"
API_PATH = "/api/v2"


@dataclass(frozen=True)
class OpenedClient:
    """A chromadb client, where it points (for messages), and the write-lock path (embedded stores only)."""

    client: ClientAPI
    location: str
    lock_path: Path | None


def open_chroma(settings: Settings) -> OpenedClient:
    """The Chroma client the settings name.

    Raises:
        ConfigError: a malformed ``--chroma-url``.
        StoreError: the server can't be reached or doesn't answer in time, or the directory can't be opened.
    """
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        return _server(settings.chroma_url, settings.chroma_timeout, chroma_settings)
    return _embedded(settings.db_path, chroma_settings)


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
    try:
        client = chromadb.HttpClient(host=url.hostname, port=port, ssl=url.scheme == "https", settings=chroma_settings)
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


def _embedded(db: Path, chroma_settings: Any) -> OpenedClient:
    import chromadb

    try:
        db.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(db), settings=chroma_settings)
    except Exception as e:
        msg = f"cannot open the knowledge base directory {db} ({e}); choose another with --db or MMRAG_DB"
        raise StoreError(msg) from e
    return OpenedClient(client, str(db), db / LOCK_NAME)
