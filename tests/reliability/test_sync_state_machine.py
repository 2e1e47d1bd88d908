"""Folder sync as a state machine (hypothesis): add, modify, delete, rename, make unreadable, restore, sync.

After every sync:

* the knowledge base's sources are exactly the readable files present, plus the unreadable ones that were stored
  before, with the version they had (nothing is ever lost to a file that can't be read);
* every stored hash is the content's (readable files) or the one stored before (unreadable files);
* no source is stored twice and no text is half-stored;
* only unreadable files are reported as skipped;
* each stored image's own vector finds it at rank 1 (ties between identical pictures aside).

Root ignores file permissions, so while any file is unreadable (``chmod 000``) the sync runs in a child process
without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (as ``setpriv --inh-caps=-dac_override,-dac_read_search`` would
run it); otherwise in this process. Mass-removal refusal is off in the machine (``allow_removal=True``) and tested on
its own below.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mmrag.factory import open_knowledge_base
from mmrag.files.paths import source_of
from mmrag.kb.records import IMAGE, TEXT
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from mmrag.search.query import Query
from tests.reliability.helpers import duplicates, records, shape_png, write
from tests.reliability.zygote import Zygote

IMAGES = ["a.png", "b.png", "sub/c.png", "sub/d.png", "sub/deep/e.png"]
NOTES = ["n1.md", "sub/n2.md", "sub/deep/n3.md"]
NAMES = IMAGES + NOTES
SHAPES = ["red-circle", "blue-star", "green-square", "yellow-triangle", "purple-circle", "orange-star"]
TEXTS = [
    "Red circles are round and red.\n",
    "Blue stars have five points.\n" * 40,  # several chunks
    "Green squares have four equal sides. 绿色的方形。\n",
    "Yellow triangles have three corners.\n" * 15,
]
MACHINE_SETTINGS = settings(
    max_examples=4,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: bounded time (a failure prints its steps)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _content(name: str, variant: int) -> bytes:
    if name.endswith(".png"):
        return shape_png(SHAPES[variant % len(SHAPES)], seed=variant, size=64)
    return TEXTS[variant % len(TEXTS)].encode("utf-8")


class SyncMachine(RuleBasedStateMachine):
    runs = itertools.count()
    stats: ClassVar[Counter[str]] = Counter()

    def __init__(self, base: Path, clip: ClipModel, zygote: Zygote) -> None:
        super().__init__()
        run = next(self.runs)
        self.folder = base / f"run{run}" / "files"
        self.folder.mkdir(parents=True)
        self.db = base / f"run{run}" / "kb"
        self.home = base / f"run{run}" / "home"
        self.clip = clip
        self.zygote = zygote
        self.kb: KnowledgeBase = open_knowledge_base(db=self.db, home=self.home, clip=clip)
        self.disk: dict[str, bytes] = {}
        self.unreadable: set[str] = set()
        self.stored: dict[str, str] = {}  # name -> sha256 the knowledge base must hold

    def _path(self, name: str) -> Path:
        return self.folder / name

    def _source(self, name: str) -> str:
        return source_of(self._path(name).resolve())

    # --- changes to the folder -----------------------------------------------------------------------------

    @initialize(variants=st.lists(st.integers(0, 5), min_size=len(NAMES), max_size=len(NAMES)))
    def start(self, variants: list[int]) -> None:
        """Start from a synced folder holding half the names."""
        for name, variant in list(zip(NAMES, variants, strict=True))[::2]:
            self.add(name, variant)
        self._sync()

    @rule(name=st.sampled_from(NAMES), variant=st.integers(0, 5))
    def add(self, name: str, variant: int) -> None:
        if name in self.disk:
            return
        data = _content(name, variant)
        write(self._path(name), data)
        self.disk[name] = data
        self.stats["add"] += 1

    @precondition(lambda self: self.disk)
    @rule(data=st.data(), variant=st.integers(0, 5))
    def modify(self, data: st.DataObject, variant: int) -> None:
        self.modify_named(data.draw(st.sampled_from(sorted(self.disk))), variant)

    def modify_named(self, name: str, variant: int) -> None:
        new = _content(name, variant)
        path = self._path(name)
        mode = path.stat().st_mode
        path.write_bytes(new)  # root writes whatever the mode says
        os.chmod(path, mode)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new time even on a coarse clock
        self.disk[name] = new
        self.stats["modify"] += 1

    @precondition(lambda self: self.disk)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.disk)))
        self._path(name).unlink()
        del self.disk[name]
        self.unreadable.discard(name)

    @precondition(lambda self: self.disk)
    @rule(data=st.data())
    def rename(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.disk)))
        kind = ".png" if name.endswith(".png") else ".md"
        free = [n for n in NAMES if n.endswith(kind) and n not in self.disk]
        if not free:
            return
        target = data.draw(st.sampled_from(free))
        self._path(target).parent.mkdir(parents=True, exist_ok=True)
        self._path(name).rename(self._path(target))
        self.disk[target] = self.disk.pop(name)
        self.stats["rename"] += 1
        if name in self.unreadable:
            self.unreadable.discard(name)
            self.unreadable.add(target)

    @precondition(lambda self: set(self.disk) - self.unreadable)
    @rule(data=st.data())
    def make_unreadable(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(set(self.disk) - self.unreadable)))
        self._path(name).chmod(0)
        self.unreadable.add(name)
        self.stats["make_unreadable"] += 1

    @precondition(lambda self: (set(self.stored) & set(self.disk)) - self.unreadable)
    @rule(data=st.data())
    def stored_file_becomes_unreadable_then_sync(self, data: st.DataObject) -> None:
        """The case that matters most: a file the knowledge base holds can't be read at the next sync..."""
        self._unreadable_then_sync(data, None)

    @precondition(lambda self: (set(self.stored) & set(self.disk)) - self.unreadable)
    @rule(data=st.data(), variant=st.integers(0, 5))
    def stored_file_changes_becomes_unreadable_then_sync(self, data: st.DataObject, variant: int) -> None:
        """... nor after it changed: the knowledge base keeps the version it had."""
        self._unreadable_then_sync(data, variant)

    def _unreadable_then_sync(self, data: st.DataObject, variant: int | None) -> None:
        name = data.draw(st.sampled_from(sorted((set(self.stored) & set(self.disk)) - self.unreadable)))
        if variant is not None:
            self.modify_named(name, variant)
        self._path(name).chmod(0)
        self.unreadable.add(name)
        self.stats["make_unreadable"] += 1
        self._sync()

    @precondition(lambda self: self.unreadable)
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.unreadable)))
        self._path(name).chmod(0o644)
        self.unreadable.discard(name)

    # --- sync and its invariants ---------------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        self._sync()

    def _sync(self) -> None:
        self.stats["sync"] += 1
        if self.unreadable:
            self.stats["sync with unreadable files"] += 1
            self.stats["kept unreadable"] += len(self.unreadable & set(self.stored))
            job = self.zygote.call(
                "sync_folder",
                options=("drop_dac",),
                db=str(self.db),
                home=str(self.home),
                model=self.clip.model_name,
                folder=str(self.folder),
                allow_removal=True,
            )
            result = job.wait(120)
            assert result.code == 0, result.stderr
            report: dict[str, Any] = result.result
            self.kb.store.refresh(force=True)  # read what the other process wrote
        else:
            report = self.kb.sync(self.folder, allow_removal=True).to_json()
        expected: dict[str, str] = {}
        for name, data in self.disk.items():
            if name not in self.unreadable:
                expected[name] = hashlib.sha256(data).hexdigest()
            elif name in self.stored:
                expected[name] = self.stored[name]  # kept as it was
        self.stored = expected
        self._check(report)

    def _check(self, report: dict[str, Any]) -> None:
        held = records(self.kb)
        hashes: dict[str, set[str]] = {}
        for modality in (IMAGE, TEXT):
            for r in held[modality].values():
                hashes.setdefault(str(r["meta"]["source"]), set()).add(str(r["meta"]["sha256"]))
        want = {self._source(n): h for n, h in self.stored.items()}
        assert set(hashes) == set(want), {"extra": set(hashes) - set(want), "missing": set(want) - set(hashes)}
        for source, digest in want.items():
            assert hashes[source] == {digest}, source
        assert duplicates(self.kb) == []
        skipped = {s["source"] for s in report["skipped"]}
        assert skipped <= {self._source(n) for n in self.unreadable}, skipped
        for id_, r in held[IMAGE].items():
            hits = self.kb.searcher.search(Query.vector(r["vector"]), k=10, modality="image", threshold=0).hits
            assert hits, id_
            best = max(h.cosine for h in hits)
            assert best > 0.999
            assert id_ in {h.id for h in hits if h.cosine >= best - 1e-5}, (id_, [(h.id, h.cosine) for h in hits])

    def teardown(self) -> None:
        for name in self.unreadable:
            self._path(name).chmod(0o644)


def test_folder_sync_keeps_its_invariants(tmp_path: Path, toy_clip: ClipModel, zygote: Zygote) -> None:
    SyncMachine.stats.clear()
    run_state_machine_as_test(lambda: SyncMachine(tmp_path, toy_clip, zygote), settings=MACHINE_SETTINGS)
    stats = SyncMachine.stats
    print(f"\nstate machine: {dict(stats)}")
    # the seeded run exercises what it claims to
    assert stats["sync"] >= 8
    assert stats["sync with unreadable files"] >= 2
    assert stats["kept unreadable"] >= 1
    assert stats["rename"] >= 1
    assert stats["modify"] >= 1


def test_the_child_without_dac_capabilities_really_cannot_read_a_chmod_000_file(tmp_path: Path, zygote: Zygote) -> None:
    """The control for the machine: root reads anything; the child the syncs run in does not."""
    secret = write(tmp_path / "secret.png", b"data")
    secret.chmod(0)
    try:
        assert secret.read_bytes() == b"data"  # root, here
        denied = zygote.call("can_read", options=("drop_dac",), path=str(secret)).wait(60)
        assert denied.code == 0, denied.stderr
        assert denied.result["readable"] is False
        assert zygote.call("can_read", path=str(secret)).wait(60).result["readable"] is True
    finally:
        secret.chmod(0o644)


def test_unreadable_files_never_count_as_removals_and_a_refusal_writes_nothing(
    tmp_path: Path, toy_clip: ClipModel, zygote: Zygote
) -> None:
    folder = tmp_path / "files"
    for i in range(20):
        write(folder / f"img{i:02d}.png", shape_png(SHAPES[i % len(SHAPES)], seed=i, size=48))
    db, home = tmp_path / "kb", tmp_path / "home"
    kb = open_knowledge_base(db=db, home=home, clip=toy_clip)
    assert kb.sync(folder).added == 20
    before = records(kb)[IMAGE].keys()
    for path in folder.iterdir():  # every file unreadable, as on a share whose permissions changed
        path.chmod(0)
    try:
        job = zygote.call(
            "sync_folder", options=("drop_dac",), db=str(db), home=str(home), model="toy", folder=str(folder)
        )
        result = job.wait(120)
    finally:
        for path in folder.iterdir():
            path.chmod(0o644)
    assert result.code == 0, result.stderr
    assert "refused" not in result.result
    assert result.result["removed"] == 0
    kb.store.refresh(force=True)
    assert records(kb)[IMAGE].keys() == before  # nothing lost
    for i in range(12):  # now really gone: most of the folder
        (folder / f"img{i:02d}.png").unlink()
    refused = zygote.call("sync_folder", db=str(db), home=str(home), model="toy", folder=str(folder)).wait(120)
    assert refused.result["refused"].startswith("the sync would remove 12 of the 20 files")
    assert len(refused.result["would_remove"]) == 12
    kb.store.refresh(force=True)
    assert records(kb)[IMAGE].keys() == before  # the refusal wrote nothing
    assert kb.sync(folder, allow_removal=True).removed == 12


def test_the_pictures_are_distinct_enough_for_the_rank_1_check(toy_clip: ClipModel) -> None:
    import numpy as np

    vectors = toy_clip.encode_images([_content("x.png", v) for v in range(6)])
    similarity = vectors @ vectors.T
    assert similarity[~np.eye(6, dtype=bool)].max() < 0.999
    assert np.diag(similarity).min() > 0.999
