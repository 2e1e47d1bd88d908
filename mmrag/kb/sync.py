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
from dataclasses import dataclass, field
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
from mmrag.files.office import is_office
from mmrag.files.paths import is_under, path_of, printable, source_of
from mmrag.files.pdf import is_pdf
from mmrag.files.thumbnails import thumbnail_data_uri
from mmrag.kb.pictures import FileRecords, PictureOptions, Pictures
from mmrag.kb.records import (
    DOCUMENT_IMAGE_KINDS,
    IMAGE,
    KIND,
    OCR,
    OWNER,
    OWNER_KEY,
    PARENT,
    RESERVED_KEYS,
    TEXT,
    Metadata,
    Record,
    image_id,
    is_child,
    rebase_id,
    text_id,
)
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
    extra: dict[str, list[str]] = field(default_factory=dict)
    """The file's other records, by collection: figures, page images, and text that belongs to an image."""
    ocr: str | None = None
    """The OCR engine that read its pictures ("" when none did; None when it has no pictures to read)."""
    legacy: bool = False
    """A PDF indexed before mmrag read pages and figures: redone once, to gain them."""

    def all_ids(self) -> dict[str, list[str]]:
        """Every record of the file, by collection."""
        out = {self.modality: list(self.ids)}
        for modality, ids in self.extra.items():
            out.setdefault(modality, []).extend(ids)
        return out


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
    pictures: PictureOptions | None = None,
) -> SyncReport:
    """Make ``store`` match ``folder`` (recursively). See the module docstring for the rules.

    Args:
        pictures: PDF figures and pages, and OCR (default: OCR where the engine is installed).
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
    syncer = _Syncer(store, metadata, on_progress, allow_removal=allow_removal, pictures=pictures)
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
    pictures: PictureOptions | None = None,
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
    report = _Syncer(store, metadata, on_progress, pictures=pictures).run(files, scope=None)
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
        pictures: PictureOptions | None = None,
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
        self.pictures = Pictures(store.clip, pictures if pictures is not None else PictureOptions())
        self.report.ocr = self.pictures.note

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
                current = old is not None and old.modality == kind and old.complete and not self._needs_ocr(old)
                if old is not None and current and _same_stat(old, f):
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
                if (
                    old is not None
                    and old.modality == kind
                    and old.complete
                    and old.sha256 == digest
                    and not self._needs_ocr(old)
                ):
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
        rows: dict[str, dict[str, list[tuple[str, Metadata]]]] = defaultdict(lambda: defaultdict(list))
        for modality in (IMAGE, TEXT):
            for id_, meta in self.store.synced_metadatas(modality).items():  # other writers' records are theirs
                rows[str(meta.get("source", ""))][modality].append((id_, meta))
        return {source: _stored_of(by_modality) for source, by_modality in rows.items()}

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
                    self._delete_stored(old)  # its content changed into something unreadable
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
        for modality, ids in old.all_ids().items():
            records = self.store.get(modality, ids, embeddings=True)
            moved = []
            for r in records:
                meta = dict(r.metadata)
                meta.update(source=new.source, size=new.size, mtime_ns=new.mtime_ns)
                meta[OWNER_KEY] = OWNER
                if is_child(meta) or KIND in meta:
                    new_id = rebase_id(r.id, old_source, new.source)
                    if PARENT in meta:
                        meta[PARENT] = rebase_id(str(meta[PARENT]), old_source, new.source)
                    if "text_id" in meta:
                        meta["text_id"] = rebase_id(str(meta["text_id"]), old_source, new.source)
                    if modality == TEXT and not is_child(meta):
                        meta["title"] = printable(new.path.name)
                elif modality == TEXT:
                    meta["title"] = printable(new.path.name)
                    new_id = text_id(new.source, int(meta.get("chunk", 0)))
                else:
                    new_id = image_id(new.source)
                    meta["caption"], meta["caption_source"] = read_caption(new.path, self.captions_files)
                moved.append(Record(new_id, r.embedding, r.document, meta))
            self.store.upsert(modality, moved)
            self.store.delete(modality, [r.id for r in records])

    def _restamp(self, old: _Stored, f: FileStat) -> None:
        for modality, ids in old.all_ids().items():
            metas = [{"mtime_ns": f.mtime_ns, "size": f.size, OWNER_KEY: OWNER} for _ in ids]
            self.store.update_metadata(modality, ids, metas)  # type: ignore[arg-type]

    def _remove(self, sources: Iterable[str], stored: Mapping[str, _Stored]) -> None:
        by_modality: dict[str, list[str]] = defaultdict(list)
        for source in sources:
            for modality, ids in stored[source].all_ids().items():
                by_modality[modality].extend(ids)
            self.report.removed += 1
        for modality, ids in by_modality.items():
            self.store.delete(modality, ids)

    def _skip(self, f: FileStat, reason: str, stale: _Stored | None) -> None:
        self.report.skipped.append(Skipped(f.source, reason))
        if stale is not None:
            self._delete_stored(stale)  # never leave an outdated version behind

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
            children = self._ocr_images(group, records, stored)
            self.store.upsert(IMAGE, records)
            self.store.upsert(TEXT, children)
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
            if is_pdf(w.file.path) or is_office(w.file.path):
                self._embed_pdf(w, old)
                self._progress(w.file.source)
                continue
            try:
                text = read_text(w.file.path)
            except DocumentError as e:
                self._skip(w.file, str(e), stale=old)
                self._progress(w.file.source)
                continue
            chunks = chunk_text(text, token_count=clip.token_counter, max_tokens=clip.context_length)
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
                self._delete_stored(old, keep={r.id for r in records})
            self._count(w)
            self.report.embedded_chunks += len(chunks)
            self._progress(w.file.source)

    # --- documents with pictures (PDF figures and pages, OCR): see mmrag/kb/pictures.py ---------------

    def _needs_ocr(self, old: _Stored) -> bool:
        """A stored file with pictures that OCR hasn't read while OCR is on, or a PDF stored without its pages:
        it is redone (once)."""
        return old.legacy or (self.pictures.ocr is not None and old.ocr == "")

    def _delete_stored(self, old: _Stored, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Delete every record of a stored file (in both collections) but those in ``keep``."""
        for modality, ids in old.all_ids().items():
            doomed = [i for i in ids if i not in keep]
            if doomed:
                self.store.delete(modality, doomed)

    def _ocr_images(self, group: Sequence[_Work], records: list[Record], stored: Mapping[str, _Stored]) -> list[Record]:
        """The OCR children of the image records just embedded (marking each record with the engine)."""
        by_source = {w.file.source: w for w in group}
        children: list[Record] = []
        fingerprint = self.pictures.fingerprint
        for record in records:
            w = by_source[str(record.metadata["source"])]
            out = FileRecords()
            if self.pictures.ocr is not None:
                try:
                    image = load_image(w.file.path, max_megapixels=self.store.clip.max_megapixels)
                except ImageError as e:
                    out.problems.append((f"OCR of {w.file.path.name}", str(e)))
                else:
                    self.pictures.ocr_children(image, record.id, self._metadata(w, TEXT), w.file.path.name, out)
            record.metadata[OCR] = fingerprint
            if out.texts:
                out.images.append(record)
                out.stamp()
            self._count_pictures(w, out)
            children.extend(out.texts)
            old = stored.get(w.file.source)
            if old is not None:
                self._delete_stored(old, keep={record.id, *(c.id for c in out.texts)})
        return children

    def _embed_pdf(self, w: _Work, old: _Stored | None) -> None:
        """A PDF's text by page, its figures and its scanned pages (a Word or PowerPoint file's text and pictures);
        skipped whole when it can't be opened."""
        records = self.pictures.office_records if is_office(w.file.path) else self.pictures.pdf_records
        try:
            out = records(w.file.path, w.file.source, self._metadata(w, TEXT))
        except DocumentError as e:
            self._skip(w.file, str(e), stale=old)
            return
        for record in out.images:
            record.metadata["modality"] = IMAGE
        self.store.upsert(IMAGE, out.images)
        self.store.upsert(TEXT, out.texts)
        if old is not None:
            self._delete_stored(old, keep={r.id for r in (*out.images, *out.texts)})
        self._count(w)
        self._count_pictures(w, out)
        self.report.embedded_chunks += sum(1 for r in out.texts if not is_child(r.metadata))
        self.report.embedded_images += len(out.images)

    def _count_pictures(self, w: _Work, out: FileRecords) -> None:
        report = self.report
        report.figures += out.figures
        report.pages += out.pages
        report.ocr_images += out.ocr_images
        report.ocr_pages += out.ocr_pages
        report.ocr_seconds += out.ocr_seconds
        report.parts_skipped.extend(Skipped(f"{w.file.source} ({part})", reason) for part, reason in out.problems)

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


def _stored_of(by_modality: Mapping[str, list[tuple[str, Metadata]]]) -> _Stored:
    """What the knowledge base holds for one file, from its records in both collections.

    The file is an image when it has an image record of its own (not a figure or page), else a text document.
    Its records are complete when they are all there: as many as ``records`` says (files with pictures), or one
    image, or ``chunks`` text chunks.
    """
    images = by_modality.get(IMAGE, [])
    texts = by_modality.get(TEXT, [])
    own_images = [(i, m) for i, m in images if m.get(KIND) not in DOCUMENT_IMAGE_KINDS]
    modality = IMAGE if own_images else TEXT
    primary = own_images if modality == IMAGE else [(i, m) for i, m in texts if not is_child(m)]
    everything = [*images, *texts]
    first = (primary or everything)[0][1]
    primary_ids = {i for i, _ in primary}
    extra: dict[str, list[str]] = {}
    for name, rows in ((IMAGE, images), (TEXT, texts)):
        others = [i for i, _ in rows if i not in primary_ids]
        if others:
            extra[name] = others
    hashes = {m.get("sha256") for _, m in everything}
    declared = first.get("records")
    if isinstance(declared, int):
        complete = len(hashes) == 1 and len(everything) == declared
    elif modality == TEXT:
        complete = len(hashes) == 1 and len(primary) == int(first.get("chunks", -1))
    else:
        complete = len(primary) == 1
    pictures = [m for _, m in images]
    ocr = None if not pictures else ("" if any(not m.get(OCR) for m in pictures) else str(pictures[0].get(OCR)))
    return _Stored(
        modality,
        [i for i, _ in primary],
        str(first.get("sha256", "")),
        int(first.get("size", -1)),
        int(first.get("mtime_ns", -1)),
        complete,
        str(first.get("caption", "")) if modality == IMAGE else "",
        extra,
        ocr,
        legacy=modality == TEXT and declared is None and is_pdf(path_of(str(first.get("source", "")))),
    )


def _same_stat(old: _Stored, f: FileStat) -> bool:
    return old.size == f.size and old.mtime_ns == f.mtime_ns


_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic"})


def _looks_like_image(path: Path) -> bool:
    """Named like an image: worth reporting when its content is not one (other files are just ignored)."""
    return path.suffix.lower() in _IMAGE_SUFFIXES
