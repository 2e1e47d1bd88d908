"""``kill -9`` at seeded random moments of ``mmrag index``, a rename-heavy resync and ``mmrag remove``.

After every kill the knowledge base opens (SQLite's whole-file check included), and a rerun converges to exactly
what an uninterrupted run gives: the same ids, sources, hashes and vectors, the same counts, no duplicate and no
half-stored document. A removal is also all-or-nothing once the knowledge base is reopened (its journal).

Kill points: a random delay from the start of the process (start-up, opening Chroma, loading the model), a random
delay after the command takes the knowledge base's write lock (the writes themselves: embedding, upserts, moves,
deletes), the moment the database file is created (a new knowledge base), and the moment a removal's journal
appears. The delays are drawn from a seeded generator over the duration of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mmrag.errors import MmragError
from mmrag.factory import open_knowledge_base
from mmrag.kb.client import DATABASE_FILE, LOCK_NAME, check_database, forget_embedded
from mmrag.kb.store import JOURNAL_NAME, Counts
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from tests.reliability.helpers import (
    duplicates,
    image_bytes,
    indexed_then_closed,
    records,
    small_folder,
    summary,
    vectors_match,
    write,
)
from tests.reliability.zygote import Job, Zygote

SEED = 20_250_601
KILLS_PER_SCENARIO = 7
DEADLINE_S = 120
REPORT = Path(os.environ.get("MMRAG_TEST_KILL_REPORT", "")) if os.environ.get("MMRAG_TEST_KILL_REPORT") else None


@dataclass
class Scenario:
    name: str
    argv: Callable[[Path], list[str]]  # the command, given the knowledge base directory
    prepare: Callable[[Path], None]  # make the knowledge base directory as it is before the command
    rerun: Callable[[KnowledgeBase], Any]
    reference: dict[str, Any] = field(default_factory=dict)
    reference_records: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)
    total_s: float = 1.0
    write_s: float = 1.0


def _open(db: Path, clip: ClipModel) -> KnowledgeBase:
    """Open as ``search`` / ``remove`` do (Chroma opens SQLite read-write, which rolls back an interrupted
    transaction), then check the whole database file as ``index`` and ``status`` do. (Checking first fails on a hot
    rollback journal: see test_status_and_index_accept_a_knowledge_base_whose_last_write_was_killed.)"""
    forget_embedded(db)
    kb = open_knowledge_base(db=db, clip=clip)
    check_database(db, thorough=True)
    return kb


def _wait_for(job: Job, path: Path, limit: float) -> float | None:
    """Poll (every 2 ms) until ``path`` exists; the time it appeared, or None if the job ended first."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if path.exists():
            return time.monotonic()
        if not job.alive():
            return None
        time.sleep(0.002)
    return None


def _kill_after(job: Job, delay: float) -> None:
    end = time.monotonic() + delay
    while time.monotonic() < end and job.alive():
        time.sleep(0.002)
    job.kill()


def _run_reference(zygote: Zygote, scenario: Scenario, db: Path, clip: ClipModel) -> None:
    """The uninterrupted run: the state every killed run must converge to, and how long each phase takes."""
    scenario.prepare(db)
    job = zygote.cli(*scenario.argv(db))
    locked = _wait_for(job, db / LOCK_NAME, DEADLINE_S)
    result = job.wait(DEADLINE_S)
    assert result.code == 0, result.stderr
    assert job.ended is not None
    scenario.total_s = job.ended - job.started
    scenario.write_s = max(0.05, job.ended - (locked or job.started))
    kb = _open(db, clip)
    scenario.reference_records = records(kb)
    scenario.reference = summary(kb, scenario.reference_records)
    assert duplicates(kb, scenario.reference_records) == []


def _one_kill(zygote: Zygote, scenario: Scenario, db: Path, clip: ClipModel, point: str, rng: random.Random) -> str:
    """Start the command, kill it at ``point``, reopen, rerun, compare. Returns what the kill left behind."""
    scenario.prepare(db)
    job = zygote.cli(*scenario.argv(db))
    if point == "from-start":
        _kill_after(job, rng.uniform(0, 0.9 * scenario.total_s))
    elif point == "after-lock":
        seen = _wait_for(job, db / LOCK_NAME, DEADLINE_S)
        _kill_after(job, rng.uniform(0, 0.7 * scenario.write_s) if seen else 0)
    elif point == "database-created":
        _wait_for(job, db / DATABASE_FILE, DEADLINE_S)
        _kill_after(job, rng.uniform(0, 0.02))
    elif point == "journal":
        _wait_for(job, db / JOURNAL_NAME, DEADLINE_S)
        _kill_after(job, rng.uniform(0, 0.005))
    else:
        raise AssertionError(point)
    result = job.wait(DEADLINE_S)
    assert "Traceback" not in result.stderr, result.stderr
    killed = result.code == -9
    try:
        kb = _open(db, clip)  # the knowledge base opens after the kill
    except MmragError as e:
        pytest.fail(f"{scenario.name}, kill {point}: the knowledge base does not open after kill -9: {e}")
    left = summary(kb)
    state = "final" if left == scenario.reference else "before" if left == scenario.before else "partial"
    if scenario.name == "remove":  # the journal makes a removal all-or-nothing once the knowledge base is reopened
        assert state in ("before", "final"), f"remove killed at {point} left a partial removal"
    scenario.rerun(kb)
    held = records(kb)
    assert summary(kb, held) == scenario.reference, f"{scenario.name} killed at {point} did not converge"
    assert duplicates(kb, held) == []
    assert vectors_match(held, scenario.reference_records) == []
    return state if killed else "finished-before-kill"


@pytest.fixture(scope="module")
def scenarios(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_id: str, tiny_clip: ClipModel, zygote: Zygote
) -> list[Scenario]:
    root = tmp_path_factory.mktemp("kill9")
    model = ["--model", tiny_model_id]

    # index: a new knowledge base from a folder of 20 images and 3 notes
    folder_a = small_folder(root / "a")

    def fresh(db: Path) -> None:
        shutil.rmtree(db, ignore_errors=True)

    index = Scenario("index", lambda db: [*model, "index", str(folder_a), "--db", str(db)], fresh, lambda kb: None)
    index.rerun = lambda kb: kb.sync(folder_a)

    # rename-heavy resync: half the files renamed or moved, two changed, one added, one deleted
    folder_b = small_folder(root / "b")
    base_b = root / "base-b"
    open_knowledge_base(db=base_b, clip=tiny_clip).sync(folder_b)
    forget_embedded(base_b)
    (folder_b / "moved").mkdir()
    for i in range(0, 20, 2):
        (folder_b / "images" / f"img{i:02d}.png").rename(folder_b / "moved" / f"renamed{i:02d}.png")
    (folder_b / "notes" / "cats.md").rename(folder_b / "moved" / "felines.md")
    write(folder_b / "images" / "img01.png", image_bytes(101))
    write(folder_b / "notes" / "tea.md", "# Tea\n\nChanged: oolong is partly oxidised.\n" * 3)
    write(folder_b / "images" / "new.png", image_bytes(102))
    (folder_b / "images" / "img03.png").unlink()

    def from_base(base: Path) -> Callable[[Path], None]:
        def prepare(db: Path) -> None:
            shutil.rmtree(db, ignore_errors=True)
            shutil.copytree(base, db)
            (db / LOCK_NAME).unlink(missing_ok=True)

        return prepare

    rename = Scenario(
        "rename", lambda db: [*model, "index", str(folder_b), "--db", str(db)], from_base(base_b), lambda kb: None
    )
    rename.rerun = lambda kb: kb.sync(folder_b)

    # remove: a folder and a file of an indexed knowledge base
    folder_c = small_folder(root / "c")
    base_c = root / "base-c"
    open_knowledge_base(db=base_c, clip=tiny_clip).sync(folder_c)
    forget_embedded(base_c)
    targets = [str(folder_c / "images"), str(folder_c / "notes" / "cats.md")]
    remove = Scenario("remove", lambda db: ["remove", *targets, "--db", str(db)], from_base(base_c), lambda kb: None)
    remove.rerun = lambda kb: kb.remove(targets)

    index.before = {"images": {}, "texts": {}, "counts": Counts(0, 0, 0)}
    for scenario, base in ((index, None), (rename, base_b), (remove, base_c)):
        if base is not None:
            scenario.before = summary(_open(base, tiny_clip))
            forget_embedded(base)
        _run_reference(zygote, scenario, root / f"reference-{scenario.name}", tiny_clip)
    return [index, rename, remove]


POINTS = {
    "index": ["database-created"] + ["after-lock"] * 4 + ["from-start"] * 2,
    "rename": ["after-lock"] * 5 + ["from-start"] * 2,
    "remove": ["journal"] + ["after-lock"] * 4 + ["from-start"] * 2,
}


@pytest.mark.parametrize("name", ["index", "rename", "remove"])
def test_kill_9_then_rerun_converges_to_the_uninterrupted_state(
    name: str, scenarios: list[Scenario], zygote: Zygote, tiny_clip: ClipModel, tmp_path: Path
) -> None:
    scenario = next(s for s in scenarios if s.name == name)
    rng = random.Random(f"{SEED}-{name}")
    outcomes: list[tuple[str, str]] = []
    real_kills = 0
    attempts = 0
    points = list(POINTS[name])
    while real_kills < KILLS_PER_SCENARIO and attempts < 2 * KILLS_PER_SCENARIO:
        point = points[attempts % len(points)]
        attempts += 1
        state = _one_kill(zygote, scenario, tmp_path / f"kb-{attempts:02d}", tiny_clip, point, rng)
        outcomes.append((point, state))
        real_kills += state != "finished-before-kill"
    if REPORT is not None:
        with REPORT.open("a") as f:
            f.write(json.dumps({"scenario": name, "outcomes": outcomes, "write_s": scenario.write_s}) + "\n")
    assert real_kills >= KILLS_PER_SCENARIO, outcomes


def test_status_and_index_accept_a_knowledge_base_whose_last_write_was_killed(
    tmp_path: Path, tiny_clip: ClipModel, zygote: Zygote
) -> None:
    db = indexed_then_closed(tmp_path, tiny_clip)
    died = zygote.call("interrupted_write", database=str(db / DATABASE_FILE)).wait(60)
    assert died.code == -9
    assert (db / (DATABASE_FILE + "-journal")).stat().st_size > 0  # a hot journal, as a kill mid-write leaves
    status = zygote.run("status", "--json", "--db", str(db), timeout=60)
    assert status.code == 0, status.stderr
    assert json.loads(status.stdout)["images"] == 3


def test_search_rolls_a_killed_write_back_and_then_status_passes(
    tmp_path: Path, tiny_model_id: str, tiny_clip: ClipModel, zygote: Zygote
) -> None:
    """The same through a command that opens without the whole-file check (Chroma's read-write open)."""
    db = indexed_then_closed(tmp_path, tiny_clip)
    assert zygote.call("interrupted_write", database=str(db / DATABASE_FILE)).wait(60).code == -9
    search = zygote.run("search", "a picture", "--json", "--threshold", "0", "--db", str(db), timeout=60)
    assert search.code == 0, search.stderr
    assert len(json.loads(search.stdout)) == 3
    status = zygote.run("status", "--json", "--db", str(db), timeout=60)
    assert status.code == 0, status.stderr
    assert json.loads(status.stdout)["images"] == 3


def test_a_new_knowledge_base_killed_as_its_database_appears_can_be_indexed(
    tmp_path: Path, tiny_clip: ClipModel
) -> None:
    folder = small_folder(tmp_path / "files", n_images=3, notes={})
    db = tmp_path / "kb"
    db.mkdir()
    (db / DATABASE_FILE).write_bytes(b"")  # what the kill left (sometimes with a 512-byte, not hot, journal)
    kb = open_knowledge_base(db=db, clip=tiny_clip, thorough=True)
    assert kb.sync(folder).added == 3
