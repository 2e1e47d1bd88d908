"""Every command on every kind of damage: a clear error (exit 1, naming chroma.sqlite3 and the fix) or a correct
recovery (exit 0, right results), never a traceback, never a misdiagnosis, never a silent wrong answer.

A knowledge base of 3 images and 3 notes is built once; each cell copies it, damages the copy and runs one command
in a fresh process. Damage to the database file is either to the whole file (emptied, cut, zeroed, its header
garbled, missing, a folder in its place) or to the pages of one table (found with SQLite's dbstat), so that every
run damages the same thing. The segment folders (Chroma's vector indexes) are deleted or their files damaged.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmrag.factory import open_knowledge_base
from mmrag.kb.client import DATABASE_FILE, forget_embedded
from mmrag.kb.records import TEXT
from mmrag.model.clip import ClipModel
from tests.reliability.helpers import small_folder
from tests.reliability.zygote import Result, Zygote

CONCURRENT = 4


def _database(db: Path) -> Path:
    return db / DATABASE_FILE


def _segments(db: Path) -> list[Path]:
    return [p for p in db.iterdir() if p.is_dir()]


def _garble(path: Path, start: int, length: int, seed: str) -> None:
    data = bytearray(path.read_bytes())
    rng = random.Random(seed)
    for i in range(start, min(start + length, len(data))):
        data[i] = rng.randrange(256)
    path.write_bytes(bytes(data))


def _garble_table(table: str) -> Callable[[Path], None]:
    """Overwrite every page of one table (or index) of chroma.sqlite3 with seeded random bytes."""

    def damage(db: Path) -> None:
        with sqlite3.connect(f"file:{_database(db)}?mode=ro", uri=True) as connection:
            pages = [row[0] for row in connection.execute("SELECT pageno FROM dbstat WHERE name = ?", (table,))]
            size = connection.execute("PRAGMA page_size").fetchone()[0]
        assert pages, table
        for page in pages:
            _garble(_database(db), (page - 1) * size, size, f"{table}-{page}")

    return damage


def _cut(keep: Callable[[int], int]) -> Callable[[Path], None]:
    def damage(db: Path) -> None:
        data = _database(db).read_bytes()
        _database(db).write_bytes(data[: keep(len(data))])

    return damage


def _is_a_folder(db: Path) -> None:
    _database(db).unlink()
    _database(db).mkdir()


def _damage_indexes(db: Path) -> None:
    for segment in _segments(db):
        data = (segment / "data_level0.bin").read_bytes()
        (segment / "data_level0.bin").write_bytes(data[: len(data) // 3])
        _garble(segment / "header.bin", 0, 100, segment.name)


DAMAGES: dict[str, Callable[[Path], None]] = {
    "emptied": lambda db: _database(db).write_bytes(b""),
    "cut-in-half": _cut(lambda n: n // 2),
    "zeroed": lambda db: _database(db).write_bytes(b"\x00" * _database(db).stat().st_size),
    "migrations-table-garbled": _garble_table("migrations"),
    "collections-table-garbled": _garble_table("collections"),
    "segments-table-garbled": _garble_table("segments"),
    "missing": lambda db: _database(db).unlink(),
    "a-folder-instead": _is_a_folder,
    "segment-folders-deleted": lambda db: [shutil.rmtree(s) for s in _segments(db)],
    "segment-files-damaged": _damage_indexes,
}
COMMANDS = ("status", "search", "index", "remove", "ask")
REBUILT = ("emptied", "cut-in-half", "migrations-table-garbled", "missing", "a-folder-instead", "segment-files-damaged")
"""The damages ``index --rebuild`` (the fix the errors name) is tried on: one of each way the file can be damaged."""


@dataclass
class Built:
    folder: Path
    base: Path
    note_chunks: int
    model: str
    results: dict[tuple[str, str], Result]


def _argv(command: str, db: Path, folder: Path, model: str) -> list[str]:
    at = ["--db", str(db)]
    return {
        "status": ["status", "--json", *at],
        "search": ["search", "a noisy picture", "--json", "--threshold", "0", "-k", "20", *at],
        "index": ["--model", model, "index", str(folder), "--json", *at],
        "remove": ["remove", str(folder / "notes"), "--json", *at],
        "ask": ["ask", "what about cats?", "--json", "-k", "10", *at],
        "index --rebuild": ["--model", model, "index", str(folder), "--rebuild", "--json", *at],
    }[command]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_model_id: str, tiny_clip: ClipModel, zygote: Zygote) -> Built:
    root = tmp_path_factory.mktemp("corruption")
    folder = small_folder(root / "files", n_images=3)
    base = root / "base"
    kb = open_knowledge_base(db=base, home=root / "home", clip=tiny_clip)
    kb.sync(folder)
    note_chunks = len(kb.store.metadatas(TEXT))
    forget_embedded(base)
    cells = [(d, c) for d in DAMAGES for c in COMMANDS] + [(d, "index --rebuild") for d in REBUILT]
    results: dict[tuple[str, str], Result] = {}
    for start in range(0, len(cells), CONCURRENT):
        running = []
        for damage, command in cells[start : start + CONCURRENT]:
            db = root / damage / command.replace(" ", "") / "kb"
            shutil.copytree(base, db)
            DAMAGES[damage](db)
            running.append(((damage, command), zygote.cli(*_argv(command, db, folder, tiny_model_id))))
        for cell, job in running:
            results[cell] = job.wait(120)
    return Built(folder, base, note_chunks, tiny_model_id, results)


MISDIAGNOSES = (
    "choose another with --db",  # the directory is fine: its database file is damaged
    "when several processes use one knowledge base",  # no other process is involved
    "weights for model",  # the model record could not be read: not a download problem
)
FIX = re.compile(r"--rebuild|mmrag index|restore it from a backup")


def _check_error(damage: str, result: Result) -> None:
    """Under ``--json`` the error is one JSON object on stdout (``{"error", "type"}``), same exit code."""
    assert result.code == 1, (result.stdout, result.stderr)
    data = json.loads(result.stdout)
    message = str(data["error"])
    assert data["type"].endswith("Error"), data
    # On stderr, at most the note a panic in chromadb's Rust core prints itself (mmrag catches the panic)
    assert not result.stderr.strip() or "panicked at" in result.stderr, result.stderr
    for wrong in MISDIAGNOSES:
        assert wrong not in message, message
    assert DATABASE_FILE in message, message  # names the file
    if damage != "a-folder-instead":  # an I/O error, not damage: it names the file and what the system said
        assert FIX.search(message), message  # and the fix


def _check_success(command: str, built: Built, result: Result) -> None:
    data = json.loads(result.stdout)
    if command == "status":
        assert (data["images"], data["text_documents"]) == (3, 3)
    elif command == "search":
        sources = {hit["source"] for hit in data}
        assert {(built.folder / "images" / f"img{i:02d}.png").as_posix() for i in range(3)} <= sources
    elif command == "index":
        assert data["added"] + data["unchanged"] + data["updated"] == 6
        assert data["skipped"] == []
    elif command == "remove":
        assert data["removed"] == built.note_chunks  # a damaged store must never look empty
    else:  # ask: the answer comes back whole; with absolute scores it may rightly hold no source (the tiny
        # random model knows no cats), so emptiness is checked by status, search and remove above
        assert isinstance(data["images"], list)
        assert isinstance(data["sources"], list)
        assert data["answer"]


def _cells() -> list[object]:
    return [pytest.param(d, c, id=f"{d}-{c.replace(' ', '')}") for d in DAMAGES for c in COMMANDS]


@pytest.mark.parametrize(("damage", "command"), _cells())
def test_a_damaged_knowledge_base_gives_a_clear_error_or_recovers(damage: str, command: str, built: Built) -> None:
    result = built.results[(damage, command)]
    assert not result.traceback, result.stderr
    assert result.code in (0, 1), result.stderr
    if result.code == 1:
        _check_error(damage, result)
    else:
        _check_success(command, built, result)


@pytest.mark.parametrize("damage", REBUILT)
def test_index_rebuild_recovers_every_damage_but_a_folder_in_place_of_the_database(damage: str, built: Built) -> None:
    """The fix the errors name works: ``--rebuild`` sets the damaged knowledge base aside and indexes afresh. A
    folder where chroma.sqlite3 should be is an I/O error, not damage: it is named, and left alone."""
    result = built.results[(damage, "index --rebuild")]
    assert not result.traceback, result.stderr
    if damage == "a-folder-instead":
        assert result.code == 1
        assert "Is a directory" in json.loads(result.stdout)["error"]  # --json: the error is JSON on stdout
        assert DATABASE_FILE in json.loads(result.stdout)["error"]
    else:
        assert result.code == 0, result.stderr
        assert (json.loads(result.stdout)["added"], json.loads(result.stdout)["skipped"]) == (6, [])
