"""A hostile folder: every good file lands, every bad one is reported with its precise reason, nothing hangs, and
memory stays bounded.

The corpus (built once, see :func:`tests.reliability.helpers.build_corpus`) mixes ~30 good images and notes, some
with odd names (not UTF-8, a newline, emoji, 255 bytes, quotes, a leading dash), with ~50 bad files (empty,
truncated, damaged, decompression bombs, other formats behind image names, bad PDFs, text that isn't UTF-8, binary
"notes") and ~20 files a sync must not even look at (hidden, FIFOs, a Unix socket, symbolic link loops and links out
of the folder). It is indexed by the real CLI (``mmrag.cli.main``, the console script's entry) in a fresh
interpreter under ``/usr/bin/time -v``, with ``--json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmrag.errors import UnsupportedImageError
from mmrag.factory import open_knowledge_base
from mmrag.files.images import load_image
from mmrag.files.paths import source_of
from mmrag.kb.records import IMAGE, TEXT, image_id, page_image_id, text_id
from mmrag.langchain.knowledge_base import KnowledgeBase
from mmrag.model.clip import ClipModel
from tests.reliability.helpers import AVIF, HEIC, Entry, blank_pdf, build_corpus, duplicates

DEADLINE_S = 300
"""The whole indexing run, interpreter start-up included (about 20 s on a loaded 2-core machine)."""
PEAK_RSS_LIMIT_MB = 1536
"""The whole process. Importing torch, open_clip and chromadb and loading even the tiny model costs about 1.2 GB
here; a folder of 20 plain images peaks at the same."""
CORPUS_RSS_GROWTH_LIMIT_MB = 192
"""Growth of the peak while the corpus is indexed, after the model is loaded and one scanned page has been rendered
and OCR'd (the engine's working set, bounded by its own size cap). The corpus adds 0-90 MB, OCR on or off (OCR
hands its freed memory back after each image; before it did, 90-205 MB). Decoding the smallest bomb (a valid
144-megapixel 1-bit PNG) takes 144 MB, and the RGB conversion that follows every decode 432 MB more: a bomb that
got through would pass this limit by far."""

WRAPPER = """
import resource, sys
from pathlib import Path
from mmrag.model.clip import ClipModel
ClipModel(sys.argv[2], device="cpu", text_runtime="torch").load()
import chromadb, mmrag.cli
from PIL import Image
from mmrag.files.ocr import run_ocr
from mmrag.kb.pictures import PictureOptions
from mmrag.files.pdf import PdfFile
# What any scanned page costs, once, before measuring: rendering one (pdfium) and OCR on it (the engine's
# working set, bounded by its own size cap). What the corpus adds on top must stay under a bomb's decode.
with PdfFile(Path(sys.argv[1])) as pdf:
    page = pdf.render(0)
from PIL import ImageDraw, ImageFont
font = ImageFont.load_default(size=40)
for line in range(20):  # lines of text, so that recognition runs too
    ImageDraw.Draw(page).text((100, 100 + 90 * line), f"line {line} of a scanned page", fill="black", font=font)
engine, _ = PictureOptions().resolve()
if engine is not None:
    run_ocr(engine, page, budget_s=60)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.argv = ["mmrag", *sys.argv[3:]]
code = 0
try:
    mmrag.cli.main()
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"MMRAG-RSS-KB {before} {after}", file=sys.stderr)
sys.exit(code)
"""


def expected_image_id(source: str) -> str:
    """An image's id; a PDF with no text is stored as its one page's image."""
    return page_image_id(source, 0) if source.endswith(".pdf") else image_id(source)


@dataclass
class Indexed:
    root: Path
    entries: list[Entry]
    db: Path
    stdout: bytes
    stderr: str
    code: int
    seconds: float
    kb: KnowledgeBase

    def source(self, entry: Entry) -> str:
        return source_of(self.root / entry.rel)

    def of(self, *fates: str) -> list[Entry]:
        return [e for e in self.entries if e.fate in fates]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, tiny_model_id: str, tiny_clip: ClipModel) -> Indexed:
    base = tmp_path_factory.mktemp("hostile")
    root = (base / "corpus").resolve()
    root.mkdir()
    entries = build_corpus(root, base / "outside")
    db = base / "kb"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
    env |= {"MMRAG_HOME": str(base / "home"), "MMRAG_TEXT_RUNTIME": "torch"}  # OCR on, as by default
    warm_up = base / "warm-up.pdf"
    warm_up.write_bytes(blank_pdf())
    command = [sys.executable, "-c", WRAPPER, str(warm_up), tiny_model_id, "--model", tiny_model_id]
    command += ["index", str(root), "--db", str(db), "--json"]
    if shutil.which("time") or Path("/usr/bin/time").exists():
        command = ["/usr/bin/time", "-v", *command]
    start = time.monotonic()
    proc = subprocess.run(command, env=env, capture_output=True, timeout=DEADLINE_S, check=False)
    seconds = time.monotonic() - start
    kb = open_knowledge_base(db=db, home=base / "home", clip=tiny_clip)
    return Indexed(root, entries, db, proc.stdout, proc.stderr.decode("utf-8", "replace"), proc.returncode, seconds, kb)


def test_the_corpus_is_as_hostile_as_promised(indexed: Indexed) -> None:
    bad_or_odd = indexed.of("skip", "ignore", "unseen") + [
        e for e in indexed.of("image", "text") if e.rel.startswith(("odd/", "notes/note_", "bomb/"))
    ]
    assert len(bad_or_odd) >= 60
    assert len(indexed.of("image", "text")) >= 20
    kinds = {e.what for e in indexed.entries}
    for needed in ("FIFO", "Unix socket", "symbolic link", "hidden file", "name that is not UTF-8", "255-byte name"):
        assert needed in kinds


def test_the_run_finishes_in_time_and_exits_0(indexed: Indexed) -> None:
    assert indexed.code == 0, indexed.stderr[-3000:]
    assert indexed.seconds < DEADLINE_S
    assert "Traceback" not in indexed.stderr


def test_every_good_file_lands_with_its_id(indexed: Indexed) -> None:
    images = {indexed.source(e) for e in indexed.of("image")}
    texts = {indexed.source(e) for e in indexed.of("text")}
    stored_images = {str(m["source"]): id_ for id_, m in indexed.kb.store.metadatas(IMAGE).items()}
    stored_texts: dict[str, set[str]] = {}
    chunks: dict[str, int] = {}
    for id_, meta in indexed.kb.store.metadatas(TEXT).items():
        stored_texts.setdefault(str(meta["source"]), set()).add(id_)
        chunks[str(meta["source"])] = int(meta["chunks"])
    assert set(stored_images) == images
    assert set(stored_texts) == texts
    assert all(stored_images[s] == expected_image_id(s) for s in images)
    assert all(stored_texts[s] == {text_id(s, c) for c in range(chunks[s])} for s in texts)
    counts = indexed.kb.counts()
    assert (counts.images, counts.text_sources) == (len(images), len(texts))
    assert duplicates(indexed.kb) == []
    for source in images | texts:
        source.encode("utf-8")  # every stored source is valid UTF-8 ...
    assert any("photo_\\xff\\xfe.png" in s for s in images)  # ... names that aren't are escaped
    assert any("line\nbreak.png" in s for s in images)
    captioned = next(
        m for m in indexed.kb.store.metadatas(IMAGE).values() if str(m["source"]).endswith("captioned.png")
    )
    assert captioned["caption"] == "a captioned noisy picture"


def test_the_report_counts_match(indexed: Indexed) -> None:
    report = json.loads(indexed.stdout.decode("utf-8"))
    assert report["added"] == len(indexed.of("image", "text"))
    assert report["embedded_images"] == len(indexed.of("image"))
    assert report["ignored"] == len(indexed.of("ignore"))
    assert (report["updated"], report["renamed"], report["removed"]) == (0, 0, 0)


def test_every_bad_file_is_reported_with_its_precise_reason(indexed: Indexed) -> None:
    report = json.loads(indexed.stdout.decode("utf-8"))
    reasons = {s["source"]: s["reason"] for s in report["skipped"]}
    expected = {indexed.source(e): e for e in indexed.of("skip")}
    assert set(reasons) == set(expected), set(reasons) ^ set(expected)
    for source, entry in expected.items():
        reason = reasons[source]
        assert re.search(entry.keyword, reason, re.IGNORECASE), (entry.what, reason)
        assert "not an image mmrag can read (checked by content)" not in reason, (entry.what, reason)


def test_hidden_special_and_linked_files_are_neither_read_nor_reported(indexed: Indexed) -> None:
    report = json.loads(indexed.stdout.decode("utf-8"))
    reported = {s["source"] for s in report["skipped"]}
    stored = {str(m["source"]) for m in indexed.kb.store.metadatas(IMAGE).values()}
    stored |= {str(m["source"]) for m in indexed.kb.store.metadatas(TEXT).values()}
    for entry in indexed.of("unseen"):
        assert indexed.source(entry) not in reported | stored, entry
        assert not any(s.startswith(indexed.source(entry) + "/") for s in stored), entry  # nothing through a link
    assert not any("secret" in s for s in stored | reported)  # the targets of links out of the folder
    assert not any("/." in s for s in stored | reported)  # hidden files and folders


def test_the_json_output_is_strict_utf8(indexed: Indexed) -> None:
    text = indexed.stdout.decode("utf-8")  # strict: raises on any byte that isn't UTF-8
    report = json.loads(text)
    assert any("empty_\\xff.jpg" in s["source"] for s in report["skipped"])
    assert any("empty\nline.png" in s["source"] for s in report["skipped"])


def test_peak_memory_stays_bounded(indexed: Indexed) -> None:
    before_kb, after_kb = map(int, re.findall(r"MMRAG-RSS-KB (\d+) (\d+)", indexed.stderr)[-1])
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", indexed.stderr)
    peak_kb = int(peak.group(1)) if peak else after_kb
    growth_mb = (after_kb - before_kb) / 1024
    print(f"\nhostile corpus: {indexed.seconds:.1f}s, RSS {before_kb // 1024} MB before, peak {peak_kb // 1024} MB")
    assert growth_mb <= CORPUS_RSS_GROWTH_LIMIT_MB, (before_kb, after_kb)
    assert peak_kb / 1024 <= PEAK_RSS_LIMIT_MB


def test_a_rerun_changes_nothing_and_reports_the_same_files(indexed: Indexed) -> None:
    first = json.loads(indexed.stdout.decode("utf-8"))
    again = indexed.kb.sync(indexed.root)
    assert (again.added, again.updated, again.removed, again.renamed) == (0, 0, 0, 0)
    assert again.unchanged == len(indexed.of("image", "text"))
    assert {s.source for s in again.skipped} == {s["source"] for s in first["skipped"]}


@pytest.mark.parametrize(("data", "name"), [(HEIC, "HEIC"), (AVIF, "AVIF")])
def test_heic_and_avif_are_named_in_the_reason(data: bytes, name: str) -> None:
    with pytest.raises(UnsupportedImageError, match=name):
        load_image(data)
