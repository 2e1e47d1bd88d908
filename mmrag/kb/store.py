"""The store: a knowledge base's two Chroma collections, its model record, reads, writes and the write lock.

It knows nothing of folders or queries: :mod:`mmrag.kb.sync` and :mod:`mmrag.search` work on a
:class:`Store`, and :class:`~mmrag.langchain.knowledge_base.KnowledgeBase` puts the three together. The record
schema is in :mod:`mmrag.kb.records`.

Writes are split under the client's ``get_max_batch_size()``. An embedded store takes a file lock while it
writes, so a second writer waits briefly and then gets :class:`KnowledgeBaseLockedError`. A store refuses
vectors from a model other than the one it records.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import numpy as np

from mmrag.errors import (
    CorruptStoreError,
    IncompatibleCollectionError,
    KnowledgeBaseLockedError,
    MmragError,
    ModelMismatchError,
    StoreError,
)
from mmrag.files.paths import is_under, source_of
from mmrag.kb.client import CORRUPTION_MARKERS, check_database, corrupt_message, is_rust_panic
from mmrag.kb.records import (
    FROM_DOCUMENTS,
    IMAGE,
    MODALITIES,
    ORIGIN_KEY,
    TEXT,
    Metadata,
    ModelRecord,
    Record,
    is_owned,
    stored_metadata,
)
from mmrag.model.clip import ClipModel
from mmrag.vectors import Matrix

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

    from mmrag.kb.client import Freshness

COUNT_MAX_AGE_S = 2.0
JOURNAL_NAME = "mmrag-removal.json"
"""Beside the lock file: the ids a removal is deleting, until it has deleted them all."""


@dataclass(frozen=True)
class Counts:
    """How much a knowledge base holds."""

    images: int
    text_chunks: int
    text_sources: int


P = ParamSpec("P")
R = TypeVar("R")


def guarded(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """Chroma's errors about a damaged database become :class:`CorruptStoreError`, naming the fix."""

    @functools.wraps(method)
    def wrapper(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        outermost = not getattr(_calls, "depth", 0)
        _calls.depth = getattr(_calls, "depth", 0) + 1
        try:
            if outermost:
                self.refresh()
            try:
                return method(self, *args, **kwargs)
            except MmragError:
                raise
            except BaseException as e:
                if not isinstance(e, Exception) and not is_rust_panic(e):
                    raise
                if any(marker in str(e).lower() for marker in CORRUPTION_MARKERS):
                    raise CorruptStoreError(corrupt_message(self.location)) from e
                if not outermost or self.freshness is None:
                    if is_rust_panic(e) or (outermost and self.freshness is None):  # a server: no fresh client
                        raise store_failure(self.location, e) from e
                    raise
                first = e
            self.refresh(force=True)  # another process may have written: read through a fresh client, once
            try:
                return method(self, *args, **kwargs)
            except MmragError:
                raise
            except BaseException as e:
                if not isinstance(e, Exception) and not is_rust_panic(e):
                    raise
                if any(marker in str(e).lower() for marker in CORRUPTION_MARKERS):
                    raise CorruptStoreError(corrupt_message(self.location)) from e
                # The same failure through a fresh client: not another process's write, unless the file says so.
                check_database(Path(self.location), thorough=True)
                msg = (
                    f"the knowledge base at {self.location} changed under this process and can't be read ({first}); "
                    "when several processes use one knowledge base, serve it with `chroma run --path DIR` and "
                    "point them at it with --chroma-url"
                )
                raise StoreError(msg) from e
        finally:
            _calls.depth -= 1

    return wrapper


_calls = threading.local()


def model_record_of(clip: ClipModel) -> ModelRecord:
    """The record a store built with ``clip`` writes."""
    return ModelRecord(clip.model_name, clip.pretrained, clip.label, clip.dim)


def is_missing_collection(error: Exception) -> bool:
    """Whether chromadb's error on ``get_collection`` says the collection doesn't exist (its type differs
    between versions and modes), rather than that the store failed (a timeout, a damaged database…)."""
    from chromadb.errors import NotFoundError

    return isinstance(error, NotFoundError) or (isinstance(error, ValueError) and "does not exist" in str(error))


def store_failure(location: str, error: BaseException) -> StoreError:
    """Chroma failing on the knowledge base at ``location`` (not damage: that is :class:`CorruptStoreError`)."""
    if "Timeout" in type(error).__name__:  # httpx's, from a server's client (no httpx import here)
        msg = (
            f"the Chroma server at {location} did not answer within its deadline ({type(error).__name__}); "
            "is it overloaded or stuck? (a slow server: raise MMRAG_CHROMA_TIMEOUT)"
        )
    else:
        msg = f"Chroma failed on the knowledge base at {location} ({type(error).__name__}: {error})"
    return StoreError(msg)


def read_model_record(client: ClientAPI, name: str, location: str = "") -> ModelRecord | None:
    """The model a knowledge base records, or None when it doesn't exist yet.

    Raises:
        CorruptStoreError: the database is damaged.
        StoreError: Chroma fails otherwise (a server that stops answering…).
    """
    for modality in MODALITIES:
        try:
            meta = client.get_collection(f"{name}_{modality}s").metadata or {}
        except BaseException as e:
            if not isinstance(e, Exception) and not is_rust_panic(e):
                raise
            if isinstance(e, Exception) and is_missing_collection(e):
                continue
            if any(marker in str(e).lower() for marker in CORRUPTION_MARKERS):
                raise CorruptStoreError(corrupt_message(location or name)) from e
            raise store_failure(location or name, e) from e
        record = ModelRecord.from_collection_metadata(meta)
        if record is not None:
            return record
    return None


class Store:
    """One knowledge base's collections in Chroma: the model record, reads, writes and the write lock.

    Args:
        client: a chromadb client (``PersistentClient`` or ``HttpClient``).
        clip: the embedding model; it must match the one the store records.
        name: the knowledge base's name inside Chroma.
        location: where it lives, for messages (a directory or a URL).
        lock_path: a lock file for embedded stores (None for a server).
        lock_timeout: seconds a writer waits for another writer before giving up.
        freshness: for an embedded store, how it notices other processes' writes (it then reads through a new
            client, so a long-running reader sees them and never fails on them).
    """

    def __init__(
        self,
        client: ClientAPI,
        clip: ClipModel,
        *,
        name: str = "mmrag",
        location: str = "",
        lock_path: Path | None = None,
        lock_timeout: float = 10.0,
        freshness: Freshness | None = None,
    ) -> None:
        self.client = client
        self.freshness = freshness
        self._writing = 0
        self.clip = clip
        self.name = name
        self.location = location or name
        self.lock_path = lock_path
        self.lock_timeout = lock_timeout
        self._collections: dict[str, Collection] = {}
        self._counts: dict[str, tuple[float, int]] = {}
        self.generation = 0
        """Goes up with each write of this process and each time another process's writes are seen."""
        self._ef_recorded: set[str] = set()
        self._adoptable: set[str] = set()

    def refresh(self, *, force: bool = False) -> None:
        """Read through a new client if another process wrote (or, with ``force``, anyway)."""
        if self.freshness is None or self._writing or not (force or self.freshness.changed()):
            return
        self.client = self.freshness.reopen()
        self._collections.clear()
        self._counts.clear()
        self.generation += 1

    def _wrote(self) -> None:
        self._counts.clear()
        self.generation += 1
        if self.freshness is not None:
            self.freshness.mark_seen()

    def __repr__(self) -> str:
        return f"Store({self.location!r}, name={self.name!r}, model={self.clip.model_name!r})"

    # --- collections and the model record --------------------------------------------------------

    def collection_name(self, modality: str) -> str:
        return f"{self.name}_{modality}s"

    @property
    def model_record(self) -> ModelRecord | None:
        return read_model_record(self.client, self.name, self.location)

    def check_model(self) -> None:
        """Raise :class:`ModelMismatchError` if the knowledge base was built with another model, and
        :class:`IncompatibleCollectionError` if a collection of its name was built by another tool in a way mmrag
        can't adopt (another distance space, or vectors without a model record)."""
        for modality in MODALITIES:
            if self.collection_name(modality) in self._adoptable:
                continue
            try:
                col = self.client.get_collection(self.collection_name(modality), embedding_function=None)
            except Exception:  # missing: chromadb's error type differs between versions and modes
                continue
            self._check_adoptable(col)
        record = self.model_record
        if record is not None and record.label != self.clip.label:
            msg = (
                f"the knowledge base at {self.location} was built with model {record.label} "
                f"(dimension {record.dim}), not {self.clip.label}; mixing embeddings from "
                "two models would give meaningless results. Leave out --model to use the knowledge base's "
                "model, or rebuild it with the new one: mmrag index FOLDER --rebuild --model ..."
            )
            raise ModelMismatchError(msg)

    @guarded
    def collection(self, modality: str) -> Collection:
        """The Chroma collection of one modality, created (with the model record) on first use."""
        found = self._collections.get(modality)
        if found is not None:
            return found
        self.check_model()
        metadata = {
            "hnsw:space": "cosine",
            **model_record_of(self.clip).collection_metadata(),
            "mmrag_modality": modality,
        }
        try:
            try:
                created = self.client.get_or_create_collection(
                    self.collection_name(modality), metadata=metadata, embedding_function=self.embedding_function()
                )
            except ValueError as e:
                if "conflict" not in str(e).lower():
                    raise
                # made by another tool with its own embedding function: keep it (mmrag writes vectors itself)
                created = self.client.get_or_create_collection(
                    self.collection_name(modality), metadata=metadata, embedding_function=None
                )
        except Exception as e:
            msg = f"cannot open collection {self.collection_name(modality)} at {self.location}: {e}"
            raise StoreError(msg) from e
        self._check_adoptable(created)
        if self.freshness is not None:
            self.freshness.mark_seen()  # creating a collection is this process's own write
        self._collections[modality] = created
        return created

    @guarded
    def _existing(self, modality: str) -> Collection | None:
        """The collection if it exists; reading never creates one (nor records a model)."""
        found = self._collections.get(modality)
        if found is not None:
            return found
        try:
            found = self.client.get_collection(self.collection_name(modality), embedding_function=None)
        except Exception as e:
            if is_missing_collection(e):
                return None
            raise  # guarded names it
        self.check_model()
        self._check_adoptable(found)
        self._collections[modality] = found
        return found

    def embedding_function(self) -> Any:
        """mmrag's chromadb embedding function for this model (:mod:`mmrag.kb.embedding_function`): its config
        is stored with each collection, so plain chromadb can query by text or image."""
        from mmrag.kb.embedding_function import MmragEmbeddingFunction

        return MmragEmbeddingFunction(clip=self.clip)

    def _check_adoptable(self, col: Collection) -> None:
        """Refuse a collection mmrag can't use as it is: another distance space, or vectors but no model record.

        Raises:
            IncompatibleCollectionError: naming the collection and the fix.
        """
        if col.name in self._adoptable:
            return
        config = dict(getattr(col, "configuration_json", None) or {})
        meta = dict(col.metadata or {})
        space = str((config.get("hnsw") or {}).get("space") or meta.get("hnsw:space") or "l2")
        where = f"the collection {col.name} at {self.location}"
        if space != "cosine":
            msg = (
                f"{where} measures distance in the {space!r} space, not cosine, so mmrag's scores would be wrong "
                "(it was not made by mmrag: e.g. Chroma.from_texts without collection_metadata). Chroma can't change "
                "a collection's space: index into a new knowledge base name instead (MMRAG_COLLECTION=NAME, "
                "or KnowledgeBase(..., name=NAME)), or delete that collection"
            )
            raise IncompatibleCollectionError(msg)
        if ModelRecord.from_collection_metadata(meta) is None and col.count() > 0:
            msg = (
                f"{where} holds vectors but no mmrag model record (it was built by another tool), so mmrag can't "
                "know which model embedded them, and querying it with the default model would be meaningless. "
                "Index into a new knowledge base name instead (MMRAG_COLLECTION=NAME, or KnowledgeBase(..., "
                "name=NAME)), or delete that collection"
            )
            raise IncompatibleCollectionError(msg)
        self._adoptable.add(col.name)

    def drop(self) -> None:
        """Delete both collections: the knowledge base becomes empty and forgets its model."""
        with self.write_lock():
            for modality in MODALITIES:
                with contextlib.suppress(Exception):
                    self.client.delete_collection(self.collection_name(modality))
            self._collections.clear()
            self._counts.clear()
            self._adoptable.clear()
            self._ef_recorded.clear()

    # --- reading -----------------------------------------------------------------------------------

    @guarded
    def counts(self) -> Counts:
        images = self._existing(IMAGE)
        texts = self._existing(TEXT)
        chunks = [m for m in self.metadatas(TEXT).values() if not m.get("parent_id")]  # not an image's own text
        sources = {str(m.get("source")) for m in chunks}
        return Counts(images.count() if images else 0, len(chunks) if texts else 0, len(sources))

    @guarded
    def count(self, modality: str, *, max_age: float = COUNT_MAX_AGE_S) -> int:
        """Records of one modality (0 when the collection doesn't exist yet).

        Counting costs Chroma several milliseconds on a large collection, and a query needs the count, so it
        is cached: this process's own writes refresh it at once, another process's within ``max_age`` seconds.
        """
        cached = self._counts.get(modality)
        now = time.monotonic()
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        col = self._existing(modality)
        count = col.count() if col is not None else 0
        self._counts[modality] = (now, count)
        return count

    @guarded
    def sample_vectors(self, modality: str, size: int, *, seed: int = 0) -> Matrix:
        """Up to ``size`` stored vectors of one modality: all of them, or a reproducible random sample.

        The sample is taken as several slices at random offsets, so it doesn't need every id.
        """
        col = self._existing(modality)
        count = col.count() if col is not None else 0
        if col is None or count == 0:
            return np.zeros((0, 0), dtype=np.float32)
        if count <= size:
            slices = [(0, count)]
        else:
            rng = np.random.default_rng(seed)
            pieces = 16
            width = max(1, size // pieces)
            starts = sorted(rng.choice(count - width + 1, size=pieces, replace=False).tolist())
            slices = [(int(s), width) for s in starts]
        vectors = []
        for offset, limit in slices:
            got = col.get(include=["embeddings"], limit=limit, offset=offset)
            if got["embeddings"] is not None and len(got["embeddings"]):
                vectors.append(np.asarray(got["embeddings"], dtype=np.float32))
        return np.concatenate(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)

    @guarded
    def metadatas(self, modality: str, where: Mapping[str, Any] | None = None) -> dict[str, Metadata]:
        """id → metadata of every record of one modality (paged, so it scales)."""
        col = self._existing(modality)
        out: dict[str, Metadata] = {}
        if col is None:
            return out
        page = 5000
        offset = 0
        while True:
            got = col.get(include=["metadatas"], limit=page, offset=offset, where=dict(where) if where else None)
            ids = got["ids"]
            for id_, meta in zip(ids, got["metadatas"] or [], strict=True):
                out[id_] = stored_metadata(meta)
            if len(ids) < page:
                return out
            offset += page

    def owned_metadatas(self, modality: str) -> dict[str, Metadata]:
        """id → metadata of the records of one modality that mmrag wrote (see :func:`~mmrag.kb.records.is_owned`)."""
        return {id_: meta for id_, meta in self.metadatas(modality).items() if is_owned(id_, meta)}

    def synced_metadatas(self, modality: str) -> dict[str, Metadata]:
        """id → metadata of mmrag's records of folder files (what sync manages; not those added as Documents)."""
        return {
            id_: meta for id_, meta in self.owned_metadatas(modality).items() if meta.get(ORIGIN_KEY) != FROM_DOCUMENTS
        }

    def foreign_metadatas(self, modality: str) -> dict[str, Metadata]:
        """id → metadata of the records of one modality that another writer put in mmrag's collection."""
        return {id_: meta for id_, meta in self.metadatas(modality).items() if not is_owned(id_, meta)}

    @guarded
    def iter_records(self, modality: str, *, page: int = 2000) -> Iterator[tuple[str, str, Metadata, str]]:
        """(id, modality, metadata, document) of every record of one modality, read page by page.

        Image documents (thumbnails) are left out: they are empty strings here.
        """
        col = self._existing(modality)
        if col is None:
            return
        include: list[Any] = ["metadatas", "documents"] if modality == TEXT else ["metadatas"]
        offset = 0
        while True:
            got = col.get(include=include, limit=page, offset=offset)
            ids = got["ids"]
            metadatas = got["metadatas"] or [{}] * len(ids)
            documents = got.get("documents") or [""] * len(ids)
            for id_, meta, document in zip(ids, metadatas, documents, strict=True):
                metadata = stored_metadata(meta)
                yield id_, str(metadata.get("modality") or modality), metadata, document or ""
            if len(ids) < page:
                return
            offset += page

    @guarded
    def get(
        self,
        modality: str,
        ids: Sequence[str],
        *,
        embeddings: bool = False,
        where: Mapping[str, Any] | None = None,
    ) -> list[Record]:
        """Stored records by id (missing ids, and with ``where`` those it excludes, are left out)."""
        col = self._existing(modality)
        if not ids or col is None:
            return []
        include: list[Any] = ["metadatas", "documents"] + (["embeddings"] if embeddings else [])
        got = col.get(ids=list(ids), include=include, where=dict(where) if where else None)
        vectors = got.get("embeddings")
        return [
            Record(
                id_,
                np.asarray(vectors[i], dtype=np.float32) if embeddings and vectors is not None else [],
                (got["documents"] or [""])[i] or "",
                stored_metadata((got["metadatas"] or [{}])[i]),
            )
            for i, id_ in enumerate(got["ids"])
        ]

    # --- writing -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Serialise writers of an embedded knowledge base across processes."""
        if self.lock_path is None:
            yield
            return
        from filelock import FileLock, Timeout

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.lock_path)
        try:
            lock.acquire(timeout=self.lock_timeout)
        except Timeout as e:
            msg = (
                f"another process is writing to the knowledge base at {self.location} (lock {self.lock_path} "
                f"held for over {self.lock_timeout:.0f}s); wait for it to finish, or share the knowledge base "
                "through a Chroma server (--chroma-url) when several processes must write"
            )
            raise KnowledgeBaseLockedError(msg) from e
        try:
            if self.freshness is not None and self.freshness.changed(throttle=False):
                self.refresh(force=True)  # another writer went before: write on what is on disk now
            self._writing += 1
            self._finish_journal()
            yield
        finally:
            self._writing -= 1
            self._wrote()
            lock.release()

    def max_batch(self) -> int:
        return max(1, int(self.client.get_max_batch_size()))

    @guarded
    def upsert(self, modality: str, records: Sequence[Record]) -> None:
        """Write records, split under the client's batch limit. Call inside :meth:`write_lock`."""
        col = self.collection(modality)
        self._record_embedding_function(col)
        size = self.max_batch()
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            col.upsert(
                ids=[r.id for r in chunk],
                embeddings=np.asarray([np.asarray(r.embedding, dtype=np.float32) for r in chunk]),
                documents=[r.document for r in chunk],
                metadatas=[r.metadata for r in chunk],
            )
        self._wrote()

    def _record_embedding_function(self, col: Collection) -> None:
        """A collection written before mmrag stored its embedding function (or by hand) gets it, and the model
        record, on the first write (chromadb lets a collection's embedding function be set afterwards)."""
        if col.name in self._ef_recorded:
            return
        config = dict(getattr(col, "configuration_json", None) or {})
        function = config.get("embedding_function") or {}
        if not function or function.get("type") == "legacy":  # none yet; another tool's own function is kept
            try:
                col.modify(configuration={"embedding_function": self.embedding_function()})
            except Exception as e:  # mmrag writes vectors itself: the function is only for plain chromadb
                import logging

                logging.getLogger(__name__).info("could not store mmrag's embedding function on %s (%s)", col.name, e)
        if ModelRecord.from_collection_metadata(col.metadata or {}) is None:
            kept = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
            col.modify(metadata={**kept, **model_record_of(self.clip).collection_metadata()})
        self._ef_recorded.add(col.name)

    @guarded
    def update_metadata(self, modality: str, ids: Sequence[str], metadatas: Sequence[Metadata]) -> None:
        col = self.collection(modality)
        size = self.max_batch()
        for start in range(0, len(ids), size):
            col.update(ids=list(ids[start : start + size]), metadatas=list(metadatas[start : start + size]))
        self._wrote()

    @guarded
    def query(
        self, modality: str, vector: Matrix, n: int, *, where: Mapping[str, Any] | None, include: list[Any]
    ) -> dict[str, Any]:
        """Chroma's nearest ``n`` records of one modality to ``vector`` (fewer when there are fewer)."""
        return dict(
            self.collection(modality).query(
                query_embeddings=[vector.tolist()], n_results=n, where=dict(where) if where else None, include=include
            )
        )

    @guarded
    def delete(self, modality: str, ids: Sequence[str]) -> None:
        col = self._existing(modality)
        if col is None:
            return
        size = self.max_batch()
        for start in range(0, len(ids), size):
            col.delete(ids=list(ids[start : start + size]))
        self._wrote()

    def remove(self, paths: Sequence[str | Path]) -> int:
        """Remove the documents mmrag wrote for these files, or for every file under these folders. Returns how
        many. Records another writer put in the collection are left (remove those by id: :meth:`remove_ids`).

        Across the two collections this converges: the ids to delete are journalled first (embedded stores), so
        a remove that is killed half-way is finished by the next write to the knowledge base.
        """
        return self.remove_each(paths, ())[0]

    def remove_ids(self, ids: Sequence[str]) -> int:
        """Remove documents by id. Returns how many existed."""
        return self.remove_each((), ids)[0]

    def remove_each(self, paths: Sequence[str | Path], ids: Sequence[str]) -> tuple[int, list[str]]:
        """Remove these files' and folders' documents (as :meth:`remove`) and these ids, in one journalled
        removal, so a kill leaves all of it or none once the knowledge base is reopened. Returns how many
        documents went, and the paths and ids (as given) that matched nothing."""
        targets = {str(p): source_of(Path(p).expanduser().resolve()) for p in paths}
        with self.write_lock():
            doomed: dict[str, list[str]] = {m: [] for m in MODALITIES}
            matched: set[str] = set()
            for modality in MODALITIES if targets else ():  # by id alone: no need to read every record
                for id_, meta in self.owned_metadatas(modality).items():
                    hits = {given for given, t in targets.items() if is_under(str(meta.get("source", "")), t)}
                    if hits:
                        matched |= hits
                        doomed[modality].append(id_)
            for modality in MODALITIES:
                found = {r.id for r in self.get(modality, ids)} if ids else set()
                matched |= found
                doomed[modality] += sorted(found - set(doomed[modality]))
            missing = [p for p in targets if p not in matched] + [i for i in ids if i not in matched]
            return self._delete_journalled(doomed), missing

    @property
    def journal_path(self) -> Path | None:
        """Where an embedded store journals a removal while it runs (None for a server)."""
        return self.lock_path.with_name(JOURNAL_NAME) if self.lock_path is not None else None

    def _delete_journalled(self, doomed: Mapping[str, list[str]]) -> int:
        journal = self.journal_path
        if journal is not None and any(doomed.values()):
            partial = journal.with_name(journal.name + ".partial")
            partial.write_text(json.dumps(dict(doomed)))
            partial.replace(journal)
        for modality, ids in doomed.items():
            self.delete(modality, ids)
        if journal is not None:
            journal.unlink(missing_ok=True)
        return sum(len(ids) for ids in doomed.values())

    def _finish_journal(self) -> None:
        """Finish a removal that was interrupted (called with the write lock held)."""
        journal = self.journal_path
        if journal is None or not journal.is_file():
            return
        try:
            doomed = json.loads(journal.read_text())
        except (OSError, ValueError):
            journal.unlink(missing_ok=True)  # a torn journal: its removal had not started
            return
        for modality in MODALITIES:
            ids = [str(i) for i in doomed.get(modality, [])]
            if ids:
                self.delete(modality, ids)
        journal.unlink(missing_ok=True)
