"""A damaged or missing knowledge base gives a clear typed error (exit 1), never a traceback or a silent empty KB."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmrag.errors import CorruptStoreError, NoKnowledgeBaseError
from mmrag.factory import open_knowledge_base
from tests.support.files import make_folder
from tests.support.kbs import open_kb


@pytest.fixture
def built(tmp_path: Path, tiny_model_id: str) -> tuple[Path, Path, str]:
    folder = make_folder(tmp_path / "files", n_images=3)
    db = tmp_path / "kb"
    open_kb(db, tiny_model_id).sync(folder)
    return db, folder, tiny_model_id


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from mmrag.cli import main

    monkeypatch.setattr("sys.argv", ["mmrag", *args])
    try:
        main()  # returns on success, exits otherwise
    except SystemExit as exited:
        code = exited.code
        return int(code) if isinstance(code, int) else 1, capsys.readouterr().err
    return 0, capsys.readouterr().err


def _garble(database: Path) -> None:
    size = database.stat().st_size
    with database.open("r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(8192))


@pytest.mark.parametrize("damage", ["garbled", "truncated", "zeroed"])
def test_a_damaged_database_is_a_clear_error_for_status_and_index(
    built: tuple[Path, Path, str], damage: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db, folder, model = built
    database = db / "chroma.sqlite3"
    if damage == "garbled":
        _garble(database)
    elif damage == "truncated":
        database.write_bytes(b"")
    else:
        database.write_bytes(b"\x00" * database.stat().st_size)
    for command in (["status"], ["index", str(folder)]):
        code, err = _cli(monkeypatch, capsys, "--model", model, *command, "--db", str(db))
        assert code == 1, command
        assert err.startswith("error: ")
        assert "chroma.sqlite3" in err
        assert "--rebuild" in err
        assert "Traceback" not in err
    with pytest.raises(CorruptStoreError):
        open_knowledge_base(db=db, model=model, thorough=True)


def test_a_truncated_database_never_becomes_an_empty_knowledge_base(built: tuple[Path, Path, str]) -> None:
    db, _, model = built
    (db / "chroma.sqlite3").write_bytes(b"")
    with pytest.raises(CorruptStoreError, match="is empty"):
        open_knowledge_base(db=db, model=model)  # even the plain, non-thorough open refuses it
    assert (db / "chroma.sqlite3").stat().st_size == 0  # and nothing was written over it


def test_rebuild_sets_a_damaged_knowledge_base_aside_and_starts_afresh(built: tuple[Path, Path, str]) -> None:
    db, folder, model = built
    _garble(db / "chroma.sqlite3")
    kb = open_knowledge_base(db=db, model=model, rebuild=True)
    assert kb.sync(folder).added == 5
    [aside] = db.parent.glob("kb.damaged-*")
    assert (aside / "chroma.sqlite3").is_file()  # the damaged copy is kept, not deleted


def test_read_commands_on_a_place_with_no_knowledge_base_create_nothing(
    tmp_path: Path, tiny_model_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo"
    for command in (["status"], ["search", "a red circle"], ["remove", "--id", "img-0"], ["ask", "what?"]):
        code, err = _cli(monkeypatch, capsys, "--model", tiny_model_id, *command, "--db", str(typo))
        assert code == 1, command
        assert "does not exist" in err
        assert "nothing was created" in err
        assert not typo.exists()
    typo.mkdir()
    code, err = _cli(monkeypatch, capsys, "--model", tiny_model_id, "status", "--db", str(typo))
    assert code == 1
    assert "holds no knowledge base" in err
    assert list(typo.iterdir()) == []
    with pytest.raises(NoKnowledgeBaseError):
        open_knowledge_base(db=typo, model=tiny_model_id, create=False)


def test_a_deleted_segment_folder_is_an_error_or_a_recovery_never_a_traceback(
    built: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    db, folder, model = built
    for segment in [p for p in db.iterdir() if p.is_dir()]:
        shutil.rmtree(segment)
    code, err = _cli(monkeypatch, capsys, "--model", model, "search", "a noisy test picture", "--db", str(db))
    assert "Traceback" not in err
    assert code in (0, 1)
    code, err = _cli(monkeypatch, capsys, "--model", model, "index", str(folder), "--db", str(db))
    assert "Traceback" not in err
    assert code in (0, 1)
