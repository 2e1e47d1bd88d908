"""Readers and writers at once: a reader process while this one indexes, two writer processes, Streamlit sessions
while another process indexes, and a Chroma server that answers its heartbeat and then nothing."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mmrag.errors import KnowledgeBaseLockedError, StoreError
from mmrag.factory import open_knowledge_base
from mmrag.files.paths import source_of
from mmrag.kb.client import LOCK_NAME, check_database, forget_embedded
from mmrag.model.clip import ClipModel
from tests.reliability.helpers import (
    duplicates,
    image_bytes,
    indexed_then_closed,
    shape_png,
    small_folder,
    summary,
    write,
)
from tests.reliability.zygote import Zygote

DEADLINE_S = 180


def _wait_for_file(path: Path, alive: Callable[[], bool], limit: float = 60) -> None:
    end = time.monotonic() + limit
    while not path.exists():
        assert alive(), f"the child ended before writing {path}"
        assert time.monotonic() < end, f"no {path} after {limit}s"
        time.sleep(0.01)


# --- (a) a reader process queries while this process indexes ----------------------------------------------


def test_a_reader_process_keeps_answering_while_this_process_indexes(
    tmp_path: Path, tiny_model_id: str, tiny_clip: ClipModel, zygote: Zygote
) -> None:
    db, home = tmp_path / "kb", tmp_path / "home"
    first = small_folder(tmp_path / "first", n_images=2)
    kb = open_knowledge_base(db=db, home=home, clip=tiny_clip)
    kb.sync(first)
    second = tmp_path / "second"
    for i in range(24):
        write(second / f"new{i:02d}.png", image_bytes(200 + i))
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    reader = zygote.call(
        "query_loop", db=str(db), home=str(home), model=tiny_model_id, ready=str(ready), stop=str(stop)
    )
    _wait_for_file(ready, reader.alive)
    try:
        report = kb.sync(second)  # this process writes while the other one reads
    finally:
        stop.write_text("1")
    assert report.added == 24
    result = reader.wait(DEADLINE_S)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.result["queries"] > 1
    assert result.result["images"] == 26  # it sees the new documents at the end
    new = {source_of((second / f"new{i:02d}.png").resolve()) for i in range(24)}
    assert new <= set(result.result["first_search"])  # the first search after the write already sees them
    assert new <= set(result.result["second_search"])


def test_the_first_search_after_another_process_wrote_sees_its_documents(
    tmp_path: Path, tiny_model_id: str, tiny_clip: ClipModel, zygote: Zygote
) -> None:
    db = tmp_path / "kb"
    kb = open_knowledge_base(db=db, clip=tiny_clip)
    kb.sync(small_folder(tmp_path / "first", n_images=2, notes={}))
    expected = 2
    for round_ in range(3):
        assert len(kb.searcher.search("a noisy picture", k=100, modality="image", threshold=0).hits) == expected
        folder = tmp_path / f"round{round_}"
        for i in range(8):
            write(folder / f"new{i}.png", image_bytes(700 + 10 * round_ + i))
        writer = zygote.run("--model", tiny_model_id, "index", str(folder), "--db", str(db), timeout=DEADLINE_S)
        assert writer.code == 0, writer.stderr
        expected += 8
        time.sleep(1.2)  # past the once-a-second look at the files
        first = kb.searcher.search("a noisy picture", k=100, modality="image", threshold=0).hits
        assert len(first) == expected, f"round {round_}: the first search saw {len(first)} of {expected} images"


# --- (b) two writer processes at once ----------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["new-kb", "existing-kb"])
def test_two_writer_processes_are_serialised_and_the_result_is_the_union(
    existing: bool, tmp_path: Path, tiny_model_id: str, tiny_clip: ClipModel, zygote: Zygote
) -> None:
    a = small_folder(tmp_path / "a", n_images=12, notes={"a.md": "Notes about folder a. " * 20})
    b = small_folder(tmp_path / "b", n_images=12, notes={"b.md": "Notes about folder b. " * 20})
    for i in range(12):  # different pictures in the two folders
        write(b / "images" / f"img{i:02d}.png", image_bytes(500 + i))
    db = tmp_path / "kb"
    if existing:
        open_knowledge_base(db=db, clip=tiny_clip).sync(small_folder(tmp_path / "c", n_images=2, notes={}))
        forget_embedded(db)
    writers = [zygote.cli("--model", tiny_model_id, "index", str(f), "--db", str(db), "--json") for f in (a, b)]
    results = [w.wait(DEADLINE_S) for w in writers]
    for folder, result in zip((a, b), results, strict=True):
        assert "Traceback" not in result.stderr, result.stderr
        if result.code != 0:  # allowed: the lock's clear refusal, never anything else
            assert result.code == 1
            assert "another process is writing to the knowledge base" in result.stderr, result.stderr
            assert LOCK_NAME in result.stderr
            forget_embedded(db)
            open_knowledge_base(db=db, clip=tiny_clip).sync(folder)
    check_database(db, thorough=True)  # not corrupted
    forget_embedded(db)
    kb = open_knowledge_base(db=db, clip=tiny_clip)
    reference = open_knowledge_base(db=tmp_path / "reference", clip=tiny_clip)
    if existing:
        reference.sync(tmp_path / "c")
    reference.sync(a)
    reference.sync(b)
    assert summary(kb) == summary(reference)
    assert duplicates(kb) == []


def test_a_writer_meeting_the_lock_gets_a_clear_error_and_a_killed_holder_frees_it(
    tmp_path: Path, tiny_clip: ClipModel, zygote: Zygote
) -> None:
    db = tmp_path / "kb"
    kb = open_knowledge_base(db=db, clip=tiny_clip)
    kb.sync(small_folder(tmp_path / "first", n_images=2, notes={}))
    before = summary(kb)
    ready = tmp_path / "ready"
    holder = zygote.call("hold_lock", db=str(db), ready=str(ready))
    _wait_for_file(ready, holder.alive)
    kb.store.lock_timeout = 0.5
    second = small_folder(tmp_path / "second", n_images=3, notes={})
    start = time.monotonic()
    with pytest.raises(KnowledgeBaseLockedError) as refused:
        kb.sync(second)
    assert time.monotonic() - start < 5
    message = str(refused.value)
    assert "another process is writing" in message
    assert str(db / LOCK_NAME) in message
    assert "--chroma-url" in message
    assert summary(kb) == before  # nothing was written
    holder.kill()  # kill -9 while holding the lock: the kernel releases it
    assert holder.wait(30).code == -9
    assert kb.sync(second).added == 3
    assert kb.counts().images == 5


def test_a_busy_knowledge_base_is_never_called_damaged_nor_set_aside(
    tmp_path: Path, tiny_model_id: str, tiny_clip: ClipModel, zygote: Zygote
) -> None:
    db = indexed_then_closed(tmp_path, tiny_clip)
    ready = tmp_path / "ready"
    holder = zygote.call("hold_sqlite_lock", database=str(db / "chroma.sqlite3"), ready=str(ready), seconds=9)
    _wait_for_file(ready, holder.alive)
    status = zygote.cli("status", "--json", "--db", str(db))
    rebuild = zygote.cli(
        "--model", tiny_model_id, "index", str(tmp_path / "files"), "--rebuild", "--json", "--db", str(db)
    )
    status_result, rebuild_result = status.wait(DEADLINE_S), rebuild.wait(DEADLINE_S)
    assert holder.wait(DEADLINE_S).code == 0
    assert list(tmp_path.glob("kb.damaged-*")) == [], rebuild_result.stderr  # a busy knowledge base is not set aside
    assert "damaged" not in status_result.stderr, status_result.stderr
    assert status_result.code == 0 or "another process" in status_result.stderr, status_result.stderr


# --- (c) Streamlit sessions while another process indexes ----------------------------------------------------


PAGE = str(Path(__file__).resolve().parents[2] / "mmrag" / "ui" / "page.py")
QUESTIONS = ["a red circle", "a blue star", "一个绿色的方形", "what shapes are yellow?"]


@pytest.fixture(scope="module")
def toy_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmrag.toy.demo import write_demo_folder

    root = tmp_path_factory.mktemp("ui-kb")
    write_demo_folder(root / "files", per_class=1)
    db = root / "kb"
    open_knowledge_base(db=db, home=root / "home", model="toy", text_runtime="torch").sync(root / "files")
    forget_embedded(db)
    return db


def test_streamlit_sessions_keep_answering_while_another_process_indexes(
    toy_kb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zygote: Zygote
) -> None:
    from streamlit.testing.v1 import AppTest

    from mmrag.toy.shapes import CLASSES

    db = tmp_path / "kb"
    import shutil

    shutil.copytree(toy_kb, db)
    extra = tmp_path / "extra"
    rng = random.Random(7)
    for i in range(36):
        write(extra / f"shape{i:02d}.png", shape_png(rng.choice(CLASSES).label, seed=1000 + i, size=96))
    monkeypatch.setenv("MMRAG_DB", str(db))
    monkeypatch.setenv("MMRAG_MODEL", "toy")
    sessions = [AppTest.from_file(PAGE, default_timeout=90) for _ in range(3)]
    for at in sessions:
        at.run()
        assert not at.exception, at.exception
    before = int(sessions[0].metric[0].value)
    writer = zygote.cli("--model", "toy", "index", str(extra), "--db", str(db), "--json")
    asked = 0
    while writer.alive() or asked < len(sessions):
        at = sessions[asked % len(sessions)]
        at.chat_input[0].set_value(QUESTIONS[asked % len(QUESTIONS)]).run()
        assert not at.exception, (asked, at.exception)
        assert not at.error, (asked, [e.value for e in at.error])
        asked += 1
        assert asked < 200
    result = writer.wait(DEADLINE_S)
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["added"] == 36
    time.sleep(1.2)  # readers look at the database files at most once a second
    for at in sessions:
        at.chat_input[0].set_value("a red circle").run()
        assert not at.exception, at.exception
        assert "No LLM was used" in "\n".join(str(m.value) for m in at.markdown)
        assert int(at.metric[0].value) == before + 36  # every session sees the new images


# --- (d) a server that answers its heartbeat, then nothing ----------------------------------------------------

IDENTITY = {"user_id": "", "tenant": "default_tenant", "databases": ["default_database"]}
VALIDATION = {
    "/api/v2/auth/identity": IDENTITY,
    "/api/v2/tenants/default_tenant": {"name": "default_tenant"},
    "/api/v2/tenants/default_tenant/databases/default_database": {
        "id": "00000000-0000-0000-0000-000000000000",
        "name": "default_database",
        "tenant": "default_tenant",
    },
}
"""What chromadb's HttpClient asks while it is constructed (chromadb/api/client.py: get_user_identity, then
_validate_tenant_database), as logged by the fake below."""


class _Fake:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = {"/api/v2/heartbeat": {"nanosecond heartbeat": 1}, **answers}
        self.release = threading.Event()
        self.log: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                fake.log.append(f"{self.command} {self.path}")
                body = fake.answers.get(self.path.split("?")[0]) if self.command == "GET" else None
                if body is None:
                    fake.release.wait(600)  # hang: no answer until the test ends
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[_Fake]:
    fake = _Fake(request.param)
    try:
        yield fake
    finally:
        fake.close()


def _bounded(call: Callable[[], Any], limit: float) -> tuple[bool, Any, float]:
    """Run ``call`` in a thread for at most ``limit`` seconds: (finished, result or exception, seconds)."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as e:
            out.append(e)

    start = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    return not worker.is_alive(), out[0] if out else None, time.monotonic() - start


LIMIT_S = 10.0
"""With chroma_timeout=1: a search makes a handful of calls, each allowed 1 s."""


@pytest.mark.parametrize("fake_server", [VALIDATION], indirect=True)
def test_a_search_against_a_server_that_stops_answering_fails_with_a_store_error(fake_server: _Fake) -> None:
    def search() -> Any:
        kb = open_knowledge_base(chroma_url=fake_server.url, chroma_timeout=1, model="toy", text_runtime="torch")
        return kb.searcher.search("a red circle", threshold=0)

    finished, outcome, seconds = _bounded(search, LIMIT_S + 20)
    assert finished, f"the search still hangs after {seconds:.0f}s; requests: {fake_server.log}"
    assert "GET /api/v2/tenants/default_tenant/databases/default_database" in fake_server.log
    assert isinstance(outcome, StoreError), f"got {outcome!r} after {seconds:.1f}s"
    assert seconds < LIMIT_S
    assert "did not answer" in str(outcome) or "MMRAG_CHROMA_TIMEOUT" in str(outcome)


@pytest.mark.parametrize("fake_server", [{}], indirect=True)
def test_opening_a_server_that_answers_only_its_heartbeat_fails_within_the_deadline(fake_server: _Fake) -> None:
    def open_it() -> Any:
        return open_knowledge_base(chroma_url=fake_server.url, chroma_timeout=1, model="toy", text_runtime="torch")

    finished, outcome, seconds = _bounded(open_it, LIMIT_S)
    assert finished, f"open_knowledge_base still hangs after {seconds:.0f}s; requests: {fake_server.log}"
    assert isinstance(outcome, StoreError), outcome
