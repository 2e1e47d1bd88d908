"""Fuzzing the decoders: ``load_image`` (bytes and files) and the document readers (``read_text`` on .txt, .md and
.pdf files). Only mmrag's typed errors (:class:`~mmrag.errors.MmragError`) may escape, and no input may hang.

Inputs are real files (PNG, JPEG, GIF, BMP, TIFF, WebP, an animated GIF, PDFs with and without text, UTF-8 notes)
mutated by hypothesis: bit flips, byte overwrites with boundary values, insertions, deletions, truncations and
splices of two seeds. Each input has a hard limit of 10 s (SIGALRM); hypothesis runs a fixed number of examples,
derandomized, with no example database, so a CI run is stable. ``atheris`` (coverage-guided) runs too when it is
installed (it is not a project dependency).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mmrag.errors import MmragError
from mmrag.factory import open_knowledge_base
from mmrag.files.documents import read_text
from mmrag.files.images import image_format, load_image
from mmrag.model.clip import ClipModel
from tests.reliability.helpers import animated_gif, blank_pdf, image_bytes, small_folder, write
from tests.support.pdfs import text_pdf

IMAGE_SEEDS = [
    image_bytes(1, "PNG"),
    image_bytes(2, "JPEG"),
    image_bytes(3, "GIF"),
    image_bytes(4, "BMP"),
    image_bytes(5, "TIFF"),
    image_bytes(6, "WEBP"),
    animated_gif(),
]
PDF_SEEDS = [text_pdf("A reliable PDF about red circles"), blank_pdf()]
TEXT_SEEDS = ["# Notes\n\nCafé, 一只猫, emoji 😺.\n".encode(), b"\xef\xbb\xbfplain ascii with a BOM\r\n" * 3]
BROKEN_TRAILER_PDF = text_pdf("the trailer lost its <<").replace(b"trailer\n<<", b"trailer\n", 1)
"""Found by this fuzzer: a trailer that is not a dictionary makes pypdf raise AttributeError (fixed: read_text
turns every pypdf failure into a DocumentError)."""

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=5),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HANG_S = 10


class Hang(Exception):
    pass


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    """pypdf logs a warning for most broken inputs, Pillow warns about broken EXIF: noise here."""
    logging.disable(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
    logging.disable(logging.NOTSET)


def _bounded(call: Callable[[], Any]) -> None:
    """Run a decoder; only MmragError may escape, and it must finish within HANG_S seconds."""

    def alarm(*_: Any) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_S)
    try:
        call()
    except MmragError:
        pass
    except Hang:
        pytest.fail(f"the decoder ran for over {HANG_S}s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
        else:
            other = draw(st.sampled_from(seeds))
            cut = draw(st.integers(0, len(other)))
            data[at:] = other[cut:]
    return bytes(data)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=st.one_of(mutated(IMAGE_SEEDS), st.binary(max_size=256)))
def test_load_image_raises_only_typed_errors(data: bytes, scratch: Path) -> None:
    _bounded(lambda: load_image(data, max_megapixels=1))
    _bounded(lambda: load_image(data, max_megapixels=1, min_side=8))
    path = scratch / "input.jpg"
    path.write_bytes(data)
    assert image_format(path) in (None, "JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # never raises
    _bounded(lambda: load_image(path, max_megapixels=1))


@FUZZ
@given(data=st.one_of(mutated(TEXT_SEEDS), st.binary(max_size=256)), suffix=st.sampled_from([".txt", ".md"]))
def test_text_readers_raise_only_typed_errors(data: bytes, suffix: str, scratch: Path) -> None:
    path = scratch / f"note{suffix}"
    path.write_bytes(data)
    _bounded(lambda: read_text(path))


@FUZZ
@example(data=BROKEN_TRAILER_PDF)
@given(data=mutated(PDF_SEEDS))
def test_the_pdf_reader_raises_only_typed_errors(data: bytes, scratch: Path) -> None:
    path = scratch / "doc.pdf"
    path.write_bytes(data)
    _bounded(lambda: read_text(path))


def test_a_pdf_that_breaks_pypdf_is_skipped_and_the_sync_goes_on(tmp_path: Path, tiny_clip: ClipModel) -> None:
    folder = small_folder(tmp_path / "files", n_images=2)
    write(folder / "notes" / "broken.pdf", BROKEN_TRAILER_PDF)
    kb = open_knowledge_base(db=tmp_path / "kb", clip=tiny_clip)
    report = kb.sync(folder)
    assert report.added == 5
    [skipped] = report.skipped
    assert skipped.source.endswith("broken.pdf")
    assert "PDF" in skipped.reason


def test_the_seeds_are_valid_inputs(scratch: Path) -> None:
    """The control: unmutated seeds decode (so the fuzzers start from real formats)."""
    for seed in IMAGE_SEEDS:
        assert load_image(seed).mode == "RGB"
    path = scratch / "seed.pdf"
    path.write_bytes(PDF_SEEDS[0])
    assert "red circles" in read_text(path)


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install atheris): the hypothesis fuzzers above still run",
)
def test_atheris_finds_no_untyped_error(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for n, data in enumerate(IMAGE_SEEDS):
        (seeds / f"image{n}").write_bytes(b"\x00" + data)
    for n, data in enumerate(TEXT_SEEDS):
        (seeds / f"text{n}").write_bytes(b"\x01" + data)
    for n, data in enumerate(PDF_SEEDS):
        (seeds / f"pdf{n}").write_bytes(b"\x02" + data)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    seconds = int(os.environ.get("MMRAG_TEST_ATHERIS_SECONDS", "5"))
    command = [sys.executable, str(Path(__file__).with_name("atheris_fuzz.py")), str(seeds)]
    command += [f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048", f"-artifact_prefix={artifacts}/"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, env=env, check=False)
    crashes = sorted(p.name for p in artifacts.iterdir())
    assert not crashes, (crashes, proc.stderr[-4000:])
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done" in proc.stderr
