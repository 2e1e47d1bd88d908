"""Keep a knowledge base in sync with folders.

``sync_folder(store, folder)`` makes the knowledge base match the folder:

* **unchanged** files (same path, size and modification time as stored) are skipped without being read;
* files whose time changed but whose content hash did not are only re-stamped, not re-embedded;
* **changed** files are re-embedded; **new** files are added; **deleted** files are removed;
* a new path whose content hash equals that of a file that is gone is a **rename** (or move): its stored
  vectors are copied to the new path's ids, nothing is re-embedded;
* a file that can't be read is **skipped** and reported with its reason; its neighbours are kept. If it
  had an older, good version in the knowledge base, that stale version is removed.

Ids derive from paths, so a rerun after an interruption (Ctrl-C, ``kill -9``) converges to the state an
uninterrupted run reaches: every record is written whole, and a text file whose chunks were only partly
written is seen as incomplete and redone. Work streams in groups, so memory doesn't grow with the folder.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mmrag.errors import (
    ConfigError,
    DocumentError,
    FolderRefusedError,
    ImageError,
    MassRemovalError,
    UnreadableFileError,
)
from mmrag.files.documents import (
    CAPTIONS_FILE,
    FileStat,
    check_readable,
    content_hash,
    is_text_document,
    load_captions_file,
    read_caption,
    read_text,
    walk,
)
from mmrag.files.images import image_format, load_image, original_size
from mmrag.files.paths import is_under, path_of, printable, source_of
from mmrag.files.thumbnails import thumbnail_data_uri
from mmrag.kb.records import IMAGE, OWNER, OWNER_KEY, RESERVED_KEYS, TEXT, Metadata, Record, image_id, text_id
from mmrag.kb.report import ProgressCallback, Skipped, SyncProgress, SyncReport
from mmrag.kb.store import Store

GROUP_FILES = 64
"""Files embedded and written together; bounds memory whatever the folder's size."""


@dataclass
class _Stored:
    """What the knowledge base holds for one source file."""

    modality: str
    ids: list[str]
    sha256: str
    size: int
    mtime_ns: int
    complete: bool
    caption: str = ""


@dataclass(frozen=True)
class _Work:
    """A file to embed (or move), with its hash and whether it replaces a stored version."""

    file: FileStat
    modality: str
    sha256: str
    status: str  # "added" or "updated"


def sync_folder(
    store: Store,
    folder: Path,
    *,
    metadata: Mapping[str, str | int | float | bool] | None = None,
    on_progress: ProgressCallback | None = None,
    allow_removal: bool = False,
    force: bool = False,
) -> SyncReport:
    """Make ``store`` match ``folder`` (recursively). See the module docstring for the rules.

    Args:
        allow_removal: go ahead even when the sync would remove most of what the folder had.
        force: index a system folder or the home folder itself.

    Raises:
        DocumentError: ``folder`` is not a readable folder.
        FolderRefusedError: ``folder`` is ``/``, a system folder or the home folder, and not ``force``.
        MassRemovalError: the sync would remove most of the folder's documents, and not ``allow_removal``;
            nothing was changed.
        ConfigError: ``metadata`` uses a key mmrag reserves.
        KnowledgeBaseLockedError: another process is writing to the knowledge base.
    """
    root = folder.expanduser().resolve()
    if not root.is_dir():
        msg = f"{folder} is not a folder"
        raise DocumentError(msg, folder)
    if not force:
        refuse_system_folder(root)
    unreadable: list[Path] = []
    files = list(walk(root, unreadable))
    syncer = _Syncer(store, metadata, on_progress, allow_removal=allow_removal)
    return syncer.run(files, scope=root, unreadable=unreadable)


_SYSTEM_PATHS = [
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib64",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/home",
    "/mnt",
    "/media",
    "/Applications",
    "/Library",
    "/System",
    "/Users",
    "/Volumes",
]
SYSTEM_FOLDERS = frozenset(Path(p) for p in _SYSTEM_PATHS)
"""Folders a sync refuses unless forced: indexing them would walk the whole machine."""
MASS_REMOVAL_MIN = 10
"""A sync refuses to remove more than half of a folder's documents once that is at least this many files."""


def refuse_system_folder(root: Path) -> None:
    """Raise :class:`FolderRefusedError` for ``/``, a system folder, or the home folder itself."""
    home = Path.home().resolve()
    if root in SYSTEM_FOLDERS or root == home or root.parent == root:
        msg = (
            f"refusing to index {root}: it is {'your home folder' if root == home else 'a system folder'}, and "
            "indexing it would walk much of the machine. Index the folder that holds your images and notes, or "
            "pass --force (force=True) if you really mean it"
        )
        raise FolderRefusedError(msg)


def sync_files(
    store: Store,
    paths: Sequence[Path],
    *,
    metadata: Mapping[str, str | int | float | bool] | None = None,
    on_progress: ProgressCallback | None = None,
) -> SyncReport:
    """Add or refresh these files only; nothing else is removed. Missing files are skipped and reported."""
    files: list[FileStat] = []
    report_missing: list[Skipped] = []
    for path in paths:
        resolved = path.expanduser().resolve()
        try:
            st = resolved.stat()
        except OSError:
            report_missing.append(Skipped(str(path), "no such file"))
            continue
        if not resolved.is_file():
            report_missing.append(Skipped(str(path), "not a regular file"))
            continue
        files.append(FileStat(resolved, st.st_size, st.st_mtime_ns))
    report = _Syncer(store, metadata, on_progress).run(files, scope=None)
    report.skipped[:0] = report_missing
    return report


class _Syncer:
    def __init__(
        self,
        store: Store,
        metadata: Mapping[str, str | int | float | bool] | None,
        on_progress: ProgressCallback | None,
        *,
        allow_removal: bool = True,
    ) -> None:
        clash = sorted(RESERVED_KEYS & set(metadata or {}))
        if clash:
            msg = f"metadata keys {', '.join(clash)} are reserved by mmrag; choose other names"
            raise ConfigError(msg)
        self.store = store
        self.user_metadata: Metadata = dict(metadata or {})
        self.on_progress = on_progress
        self.allow_removal = allow_removal
        self.report = SyncReport()
        self.done = 0
        self.total = 0
        self.captions_files: dict[Path, dict[str, str]] = {}

    # --- planning ----------------------------------------------------------------------------------

    def run(self, files: list[FileStat], scope: Path | None, unreadable: Sequence[Path] = ()) -> SyncReport:
        start = time.perf_counter()
        store = self.store
        with store.write_lock():
            stored = self._stored()
            on_disk = {f.source: f for f in files}
            kept = self._unreadable_folders(unreadable, stored)
            if scope is not None:
                self._check_removals(stored, on_disk, scope, kept)
            captions_files = self.captions_files = self._captions_files(files)
            kinds = self._kinds(files, stored)
            caption_sidecars = self._sidecars(files, kinds)

            work: list[_Work] = []
            new_by_hash: dict[str, list[FileStat]] = defaultdict(list)
            for f in files:
                kind = kinds.get(f.source)
                if kind is None or f.source in caption_sidecars:
                    continue
                old = stored.get(f.source)
                if old is not None and old.modality == kind and old.complete and _same_stat(old, f):
                    self.report.unchanged += 1
                    continue
                try:
                    digest = content_hash(f.path)
                except UnreadableFileError as e:
                    self._skip(f, str(e), stale=None)  # can't read it now: keep what the knowledge base has
                    continue
                except DocumentError as e:
                    self._skip(f, str(e), stale=old)
                    continue
                if old is not None and old.modality == kind and old.complete and old.sha256 == digest:
                    self._restamp(old, f)
                    self.report.unchanged += 1
                elif old is not None:
                    work.append(_Work(f, kind, digest, "updated"))
                else:
                    new_by_hash[digest].append(f)
                    work.append(_Work(f, kind, digest, "added"))

            # Only a folder sync removes: stored files under the folder that are no longer there.
            gone = [s for s in stored if s not in on_disk and is_under(s, scope) and s not in kept] if scope else []
            work = self._renames(work, stored, gone, on_disk, scope)
            self._remove([s for s in gone if s in stored], stored)
            self._update_captions(files, kinds, stored, captions_files, caption_sidecars, work)

            self.total = len(work)
            if self.on_progress is not None:
                self.on_progress(SyncProgress(0, self.total, "", found=len(files)))
            self._embed_images([w for w in work if w.modality == IMAGE], stored, captions_files)
            self._embed_texts([w for w in work if w.modality == TEXT], stored)
        self.report.seconds = time.perf_counter() - start
        return self.report

    def _stored(self) -> dict[str, _Stored]:
        out: dict[str, _Stored] = {}
        for modality in (IMAGE, TEXT):
            per_source: dict[str, list[tuple[str, Metadata]]] = defaultdict(list)
            for id_, meta in self.store.synced_metadatas(modality).items():  # other writers' records are theirs
                per_source[str(meta.get("source", ""))].append((id_, meta))
            for source, rows in per_source.items():
                first = rows[0][1]
                hashes = {m.get("sha256") for _, m in rows}
                if modality == TEXT:
                    expected = int(first.get("chunks", -1))
                    complete = len(hashes) == 1 and len(rows) == expected
                else:
                    complete = len(rows) == 1
                out[source] = _Stored(
                    modality,
                    [id_ for id_, _ in rows],
                    str(first.get("sha256", "")),
                    int(first.get("size", -1)),
                    int(first.get("mtime_ns", -1)),
                    complete,
                    str(first.get("caption", "")),
                )
        return out

    def _unreadable_folders(self, folders: Sequence[Path], stored: Mapping[str, _Stored]) -> set[str]:
        """Report each folder that couldn't be listed; the sources stored under it are kept, never removed."""
        kept: set[str] = set()
        for folder in folders:
            under = {s for s in stored if is_under(s, folder)}
            kept |= under
            reason = f"cannot read this folder; the {len(under)} documents stored from it are kept"
            self.report.skipped.append(Skipped(source_of(folder), reason))
        return kept

    def _check_removals(
        self, stored: Mapping[str, _Stored], on_disk: Mapping[str, FileStat], scope: Path, kept: set[str]
    ) -> None:
        """Refuse, before anything is written, a sync that would remove most of what the folder had."""
        if self.allow_removal:
            return
        had = [s for s in stored if is_under(s, scope)]
        gone = [s for s in had if s not in on_disk and s not in kept]
        new = sum(1 for s in on_disk if s not in stored)  # each could be a moved file rather than a new one
        removals = len(gone) - min(len(gone), new)
        if not had or removals == 0:
            return
        everything = removals == len(had) and len(had) >= 2
        if everything or (removals >= MASS_REMOVAL_MIN and removals > len(had) / 2):
            shown = ", ".join(sorted(gone)[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
            msg = (
                f"the sync would remove {removals} of the {len(had)} files the knowledge base holds from {scope} "
                f"({shown}); nothing was changed. If the folder is on a drive that isn't mounted, mount it and "
                "sync again; if the files really are gone, sync with --allow-removal (allow_removal=True)"
            )
            raise MassRemovalError(msg, sorted(gone))

    def _captions_files(self, files: Iterable[FileStat]) -> dict[Path, dict[str, str]]:
        found: dict[Path, dict[str, str]] = {}
        for f in files:
            if f.path.name == CAPTIONS_FILE:
                try:
                    found[f.path.parent] = load_captions_file(f.path)
                except DocumentError as e:
                    self.report.skipped.append(Skipped(f.source, str(e)))
        return found

    def _kinds(self, files: Iterable[FileStat], stored: Mapping[str, _Stored]) -> dict[str, str]:
        """image or text for each indexable file; unchanged files are not opened."""
        kinds: dict[str, str] = {}
        for f in files:
            if f.path.name == CAPTIONS_FILE:
                continue
            if is_text_document(f.path):
                kinds[f.source] = TEXT
                continue
            old = stored.get(f.source)
            if old is not None and old.modality == IMAGE and _same_stat(old, f):
                kinds[f.source] = IMAGE
                continue
            try:
                check_readable(f.path)
            except UnreadableFileError as e:
                if old is not None or _looks_like_image(f.path):
                    self.report.skipped.append(Skipped(f.source, str(e)))  # and what it had stays
                else:
                    self.report.ignored += 1
                continue
            if image_format(f.path) is not None:
                kinds[f.source] = IMAGE
            elif _looks_like_image(f.path) or (old is not None and old.modality == IMAGE):
                self.report.skipped.append(Skipped(f.source, self._why_not_an_image(f.path)))
                if old is not None:
                    self.store.delete(old.modality, old.ids)  # its content changed into something unreadable
            else:
                self.report.ignored += 1
        return kinds

    def _why_not_an_image(self, path: Path) -> str:
        """The decoder's own precise reason (empty file, HEIC, PSD…), not a generic one."""
        try:
            load_image(path, max_megapixels=self.store.clip.max_megapixels)
        except ImageError as e:
            return str(e)
        return f"{path}: not an image mmrag can read (checked by content)"

    @staticmethod
    def _sidecars(files: Iterable[FileStat], kinds: Mapping[str, str]) -> set[str]:
        """``.txt`` files that caption an image next to them (same folder and stem)."""
        image_stems = {(Path(s).parent, Path(s).stem) for s, k in kinds.items() if k == IMAGE}
        return {
            f.source for f in files if f.path.suffix.lower() == ".txt" and (f.path.parent, f.path.stem) in image_stems
        }

    def _renames(
        self,
        work: list[_Work],
        stored: dict[str, _Stored],
        gone: list[str],
        on_disk: Mapping[str, FileStat],
        scope: Path | None,
    ) -> list[_Work]:
        """Turn an added file whose content equals a vanished one into a move of the stored records."""
        vanished: dict[tuple[str, str], list[str]] = defaultdict(list)
        gone_set = set(gone)
        for source, old in stored.items():
            if not old.complete or source in on_disk:
                continue
            if source in gone_set or ((scope is None or not is_under(source, scope)) and not path_of(source).exists()):
                vanished[(old.modality, old.sha256)].append(source)
        remaining: list[_Work] = []
        for w in work:
            candidates = vanished.get((w.modality, w.sha256)) if w.status == "added" else None
            if not candidates:
                remaining.append(w)
                continue
            old_source = candidates.pop(0)
            self._move(stored.pop(old_source), old_source, w.file)
            gone_set.discard(old_source)
            self.report.renamed += 1
        gone[:] = [g for g in gone if g in gone_set]
        return remaining

    # --- writing -----------------------------------------------------------------------------------

    def _move(self, old: _Stored, old_source: str, new: FileStat) -> None:
        records = self.store.get(old.modality, old.ids, embeddings=True)
        moved = []
        for r in records:
            meta = dict(r.metadata)
            meta.update(source=new.source, size=new.size, mtime_ns=new.mtime_ns)
            meta[OWNER_KEY] = OWNER
            if old.modality == TEXT:
                meta["title"] = printable(new.path.name)
                new_id = text_id(new.source, int(meta.get("chunk", 0)))
            else:
                new_id = image_id(new.source)
                meta["caption"], meta["caption_source"] = read_caption(new.path, self.captions_files)
            moved.append(Record(new_id, r.embedding, r.document, meta))
        self.store.upsert(old.modality, moved)
        self.store.delete(old.modality, [r.id for r in records])

    def _restamp(self, old: _Stored, f: FileStat) -> None:
        metas = [{"mtime_ns": f.mtime_ns, "size": f.size, OWNER_KEY: OWNER} for _ in old.ids]
        self.store.update_metadata(old.modality, old.ids, metas)  # type: ignore[arg-type]

    def _remove(self, sources: Iterable[str], stored: Mapping[str, _Stored]) -> None:
        by_modality: dict[str, list[str]] = defaultdict(list)
        for source in sources:
            old = stored[source]
            by_modality[old.modality].extend(old.ids)
            self.report.removed += 1
        for modality, ids in by_modality.items():
            self.store.delete(modality, ids)

    def _skip(self, f: FileStat, reason: str, stale: _Stored | None) -> None:
        self.report.skipped.append(Skipped(f.source, reason))
        if stale is not None:
            self.store.delete(stale.modality, stale.ids)  # never leave an outdated version behind

    def _update_captions(
        self,
        files: Iterable[FileStat],
        kinds: Mapping[str, str],
        stored: Mapping[str, _Stored],
        captions_files: dict[Path, dict[str, str]],
        sidecars: set[str],
        work: Sequence[_Work],
    ) -> None:
        """Unchanged images whose caption changed get the new caption without re-embedding."""
        pending = {w.file.source for w in work}
        for f in files:
            old = stored.get(f.source)
            if kinds.get(f.source) != IMAGE or old is None or f.source in pending or f.source in sidecars:
                continue
            caption, origin = read_caption(f.path, captions_files)
            if caption != old.caption:
                self.store.update_metadata(IMAGE, old.ids, [{"caption": caption, "caption_source": origin}])

    def _progress(self, current: str) -> None:
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(SyncProgress(self.done, self.total, current))

    def _embed_images(
        self, work: Sequence[_Work], stored: Mapping[str, _Stored], captions_files: dict[Path, dict[str, str]]
    ) -> None:
        for start in range(0, len(work), GROUP_FILES):
            group = work[start : start + GROUP_FILES]
            facts: dict[int, tuple[str, int, int]] = {}

            def remember(index: int, image: Image.Image, facts: dict[int, tuple[str, int, int]] = facts) -> None:
                facts[index] = (thumbnail_data_uri(image), *original_size(image))

            result = self.store.clip.try_encode_images([str(w.file.path) for w in group], on_image=remember)
            failed = {f.index: f for f in result.failures}
            records = []
            for index, vector in zip(result.indices, result.vectors, strict=True):
                w = group[index]
                thumb, width, height = facts[index]
                caption, origin = read_caption(w.file.path, captions_files)
                meta = self._metadata(w, IMAGE) | {
                    "width": width,
                    "height": height,
                    "caption": caption,
                    "caption_source": origin,
                }
                records.append(Record(image_id(w.file.source), vector, thumb, meta))
            self.store.upsert(IMAGE, records)
            for index, w in enumerate(group):
                if index in failed:
                    self._skip(w.file, str(failed[index].error), stale=stored.get(w.file.source))
                else:
                    self._count(w)
                    self.report.embedded_images += 1
                self._progress(w.file.source)

    def _embed_texts(self, work: Sequence[_Work], stored: Mapping[str, _Stored]) -> None:
        from mmrag.files.chunking import chunk_text

        clip = self.store.clip
        for w in work:
            old = stored.get(w.file.source)
            try:
                text = read_text(w.file.path)
            except DocumentError as e:
                self._skip(w.file, str(e), stale=old)
                self._progress(w.file.source)
                continue
            chunks = chunk_text(text, token_count=clip.token_count, max_tokens=clip.context_length)
            if not chunks:
                self._skip(w.file, f"{w.file.path}: the document is empty", stale=old)
                self._progress(w.file.source)
                continue
            vectors = clip.encode_texts([c.text for c in chunks])
            base = self._metadata(w, TEXT) | {"chunks": len(chunks), "title": printable(w.file.path.name)}
            records = [
                Record(
                    text_id(w.file.source, c.index),
                    v,
                    c.text,
                    base | {"chunk": c.index, "start": c.start, "start_index": c.start},
                )
                for c, v in zip(chunks, vectors, strict=True)
            ]
            self.store.upsert(TEXT, records)
            if old is not None:
                keep = {r.id for r in records}
                self.store.delete(TEXT, [i for i in old.ids if i not in keep])
            self._count(w)
            self.report.embedded_chunks += len(chunks)
            self._progress(w.file.source)

    def _metadata(self, w: _Work, modality: str) -> Metadata:
        meta: Metadata = dict(self.user_metadata)
        meta.update(
            modality=modality,
            source=w.file.source,
            sha256=w.sha256,
            size=w.file.size,
            mtime_ns=w.file.mtime_ns,
        )
        meta[OWNER_KEY] = OWNER
        return meta

    def _count(self, w: _Work) -> None:
        if w.status == "added":
            self.report.added += 1
        else:
            self.report.updated += 1


def _same_stat(old: _Stored, f: FileStat) -> bool:
    return old.size == f.size and old.mtime_ns == f.mtime_ns


_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"})


def _looks_like_image(path: Path) -> bool:
    """Named like an image: worth reporting when its content is not one (other files are just ignored)."""
    return path.suffix.lower() in _IMAGE_SUFFIXES
