"""Folder sync never loses documents to a file it can't read, a name that isn't UTF-8, or a missing drive."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmrag.cli import cli
from mmrag.errors import FolderRefusedError, MassRemovalError
from mmrag.files.paths import path_of, printable, source_of
from mmrag.kb.records import IMAGE, TEXT
from mmrag.kb.sync import refuse_system_folder
from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.files import make_folder, make_image
from tests.support.kbs import open_kb

BAD = os.fsdecode(b"photo_\xff")  # a file name that is not UTF-8 (Python keeps the byte as a surrogate escape)


@pytest.fixture
def kb(tmp_path: Path, tiny_model_id: str) -> KnowledgeBase:
    return open_kb(tmp_path / "kb", tiny_model_id)


def test_a_name_that_is_not_utf8_is_indexed_with_its_neighbours(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "files", n_images=3)
    make_image(folder / "images" / f"{BAD}.png", seed=9)
    (folder / "notes" / f"{BAD}.md").write_text("A note whose file name is not UTF-8.\n")
    report = kb.sync(folder)
    assert (report.added, len(report.skipped)) == (7, 0)
    sources = {str(m["source"]) for m in kb.store.metadatas(IMAGE).values()}
    sources |= {str(m["source"]) for m in kb.store.metadatas(TEXT).values()}
    escaped = [s for s in sources if "photo_\\xff" in s]
    assert len(escaped) == 2
    for source in sources:
        source.encode("utf-8")  # every stored source is valid UTF-8
        assert path_of(source).is_file()  # and still names the real file
    assert kb.sync(folder).unchanged == 7  # a rerun converges


def test_json_output_stays_valid_utf8_with_such_names(tmp_path: Path, tiny_model_id: str) -> None:
    folder = make_folder(tmp_path / "files", n_images=1)
    (folder / "images" / f"{BAD}.jpg").write_bytes(b"")  # skipped: its name goes into the report
    result = CliRunner().invoke(
        cli, ["--model", tiny_model_id, "index", str(folder), "--db", str(tmp_path / "kb"), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout_bytes.decode("utf-8"))  # strict UTF-8
    [skipped] = data["skipped"]
    assert "photo_\\xff.jpg" in skipped["source"]
    assert "empty" in skipped["reason"]


def test_printable_and_path_of_round_trip(tmp_path: Path) -> None:
    path = tmp_path / f"{BAD}.png"
    path.write_bytes(b"x")
    source = source_of(path)
    assert source.endswith("photo_\\xff.png")
    assert path_of(source) == path
    assert printable("plain 一只猫") == "plain 一只猫"


def _unprivileged(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where permissions bind: as root, without the capabilities that let root read anything."""
    command = [sys.executable, "-c", textwrap.dedent(code)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: can't make a folder unreadable")
        caps = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")} | {"MMRAG_TEXT_RUNTIME": "torch"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _sync_code(db: Path, home: Path, model: str, folder: Path) -> str:
    return f"""
        import json
        from mmrag import open_knowledge_base
        kb = open_knowledge_base(db={str(db)!r}, home={str(home)!r}, model={model!r})
        report = kb.sync({str(folder)!r})
        print(json.dumps({{"removed": report.removed, "skipped": [[s.source, s.reason] for s in report.skipped],
                          "images": kb.counts().images, "texts": kb.counts().text_sources}}))
        """


def test_an_unreadable_subfolder_keeps_its_documents(tmp_path: Path, tiny_model_id: str) -> None:
    folder = make_folder(tmp_path / "files", n_images=3)
    db, home = tmp_path / "kb", tmp_path / "home"
    first = open_kb(db, tiny_model_id).sync(folder)
    assert first.added == 5
    (folder / "images").chmod(0)
    try:
        proc = _unprivileged(_sync_code(db, home, tiny_model_id, folder), tmp_path)
    finally:
        (folder / "images").chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["removed"] == 0
    assert out["images"] == 3  # nothing lost
    [(source, reason)] = out["skipped"]
    assert source.endswith("/images")
    assert "cannot read this folder" in reason
    assert "3 documents" in reason


def test_an_unreadable_changed_file_keeps_its_old_version_and_says_why(tmp_path: Path, tiny_model_id: str) -> None:
    folder = make_folder(tmp_path / "files", n_images=2)
    db, home = tmp_path / "kb", tmp_path / "home"
    open_kb(db, tiny_model_id).sync(folder)
    note = folder / "notes" / "cats.md"
    note.write_text("Changed, then made unreadable.\n")
    image = folder / "images" / "img1.png"
    make_image(image, seed=77)
    note.chmod(0)
    image.chmod(0)
    try:
        proc = _unprivileged(_sync_code(db, home, tiny_model_id, folder), tmp_path)
    finally:
        note.chmod(0o644)
        image.chmod(0o644)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (out["removed"], out["images"], out["texts"]) == (0, 2, 2)
    reasons = dict(out["skipped"])
    assert set(reasons) == {source_of(note.resolve()), source_of(image.resolve())}
    assert all("cannot be read" in r and "kept" in r for r in reasons.values())


def test_a_sync_that_would_remove_most_of_a_folder_stops_and_changes_nothing(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    for i in range(15):
        make_image(folder / f"img{i:02d}.png", seed=i)
    kb.sync(folder)
    for i in range(11):
        (folder / f"img{i:02d}.png").unlink()
    with pytest.raises(MassRemovalError, match=r"remove 11 of the 15 files.*--allow-removal") as refused:
        kb.sync(folder)
    assert len(refused.value.would_remove) == 11
    assert kb.counts().images == 15  # nothing was changed
    assert kb.sync(folder, allow_removal=True).removed == 11
    assert kb.counts().images == 4
    (folder / "img11.png").unlink()  # a few at a time is an ordinary sync
    assert kb.sync(folder).removed == 1


def test_an_emptied_folder_as_when_a_drive_is_not_mounted_is_refused(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "drive", n_images=2)
    kb.sync(folder)
    for child in folder.iterdir():
        shutil.rmtree(child)
    with pytest.raises(MassRemovalError, match="remove 4 of the 4"):
        kb.sync(folder)
    assert kb.counts().images == 2


def test_moving_a_whole_subfolder_is_not_a_mass_removal(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    for i in range(12):
        make_image(folder / "old" / f"img{i:02d}.png", seed=i)
    kb.sync(folder)
    (folder / "old").rename(folder / "new")
    report = kb.sync(folder)
    assert (report.renamed, report.removed) == (12, 0)


def test_the_cli_refuses_then_allows_removal(tmp_path: Path, tiny_model_id: str) -> None:
    folder = make_folder(tmp_path / "drive", n_images=2)
    args = ["--model", tiny_model_id, "index", str(folder), "--db", str(tmp_path / "kb")]
    assert CliRunner().invoke(cli, args).exit_code == 0
    for child in folder.iterdir():
        shutil.rmtree(child)
    refused = CliRunner().invoke(cli, args)
    assert isinstance(refused.exception, MassRemovalError)  # main() prints it and exits 1
    done = CliRunner().invoke(cli, [*args, "--allow-removal"])
    assert done.exit_code == 0, done.output
    assert "removed 4" in done.stdout


def test_system_folders_and_home_are_refused_unless_forced(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for root in (Path("/"), Path("/usr"), Path("/etc")):
        with pytest.raises(FolderRefusedError, match="--force"):
            refuse_system_folder(root)
    home = make_folder(tmp_path / "home-of-user", n_images=1)
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    with pytest.raises(FolderRefusedError, match="your home folder"):
        kb.sync(home)
    assert kb.counts().images == 0
    assert kb.sync(home, force=True).added == 3
    refuse_system_folder(home / "images")  # a folder inside home is fine


def test_skip_reasons_are_the_decoders_own(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "heic.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    (folder / "psd.png").write_bytes(b"8BPS\x00\x01" + b"\x00" * 64)
    make_image(folder / "good.png", seed=1)
    report = kb.sync(folder)
    reasons = {Path(s.source).name: s.reason for s in report.skipped}
    assert report.added == 1
    assert set(reasons) == {"empty.jpg", "heic.jpg", "psd.png"}
    assert all("not an image mmrag can read (checked by content)" not in r for r in reasons.values())
    assert "empty" in reasons["empty.jpg"]


def test_index_says_how_many_files_it_found_before_embedding(tmp_path: Path, tiny_model_id: str) -> None:
    folder = make_folder(tmp_path / "files", n_images=3)
    result = CliRunner().invoke(cli, ["--model", tiny_model_id, "index", str(folder), "--db", str(tmp_path / "kb")])
    assert result.exit_code == 0, result.output
    assert "found 6 files; 5 to embed" in result.stderr


def test_the_stored_size_is_the_images_real_size_not_the_reduced_decode(kb: KnowledgeBase, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (224, 224), "red").save(folder / "square.jpg", quality=90)
    turned = Image.new("RGB", (400, 200), "blue")
    exif = turned.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90° to view
    turned.save(folder / "turned.jpg", exif=exif)
    kb.sync(folder)
    sizes = {Path(str(m["source"])).name: (m["width"], m["height"]) for m in kb.store.metadatas(IMAGE).values()}
    assert sizes == {"square.jpg": (224, 224), "turned.jpg": (200, 400)}


def test_an_interrupted_remove_is_finished_by_the_next_open(
    tmp_path: Path, tiny_model_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(tmp_path / "files", n_images=2)
    db = tmp_path / "kb"
    kb = open_kb(db, tiny_model_id)
    kb.sync(folder)
    real_delete = kb.store.delete

    def dies_between_collections(modality: str, ids: list[str]) -> None:
        if modality == TEXT:
            raise KeyboardInterrupt  # as a kill between the two collections would
        real_delete(modality, ids)

    monkeypatch.setattr(kb.store, "delete", dies_between_collections)
    with pytest.raises(KeyboardInterrupt):
        kb.remove([folder])
    assert kb.store.journal_path is not None
    assert kb.store.journal_path.is_file()
    assert (kb.counts().images, kb.counts().text_chunks > 0) == (0, True)  # half-way
    again = open_kb(db, tiny_model_id)
    assert (again.counts().images, again.counts().text_chunks) == (0, 0)  # finished on open
    assert not again.store.journal_path.is_file()
    assert again.sync(folder).added == 4  # and the KB works as before
