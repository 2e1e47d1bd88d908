"""Fixtures every test can use. The helpers behind them live in ``tests/support/`` (see tests/README.md).

- an isolated mmrag home for every test (autouse), and the ``slow`` marker's skip;
- background jobs, started as the session starts when a selected test needs them: the toy's and the tiny
  model's text towers exported to ONNX (``toy_onnx_export``, ``tiny_onnx_export``, in ``onnx_dir``), processes
  that exit while preparing ONNX (``exits_while_preparing``), the README followed as written (``readme_run``);
- models: a tiny random open_clip model (``tiny_model_id``, ``tiny_clip``), the shipped toy (``toy_clip``);
- knowledge bases built once per session (don't write to them; copy with ``support.kbs.copy_kb``):
  ``demo_kb`` (the toy demo: 48 images, 25 notes), ``ui_demo_db`` (one image per class), ``tools_kb`` (four
  classes and a prompt-injection note);
- ``opened``: the paths a test opens; ``mmrag_cli``: the CLI runner (``tests/support/cli.py``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.audit import recording_opens
from tests.support.background import Background
from tests.support.cli import MmragCli
from tests.support.examples import README_RUN
from tests.support.onnx import EXITS_WHILE_PREPARING, TINY_EXPORT, TOY_EXPORT, ExitRuns

if TYPE_CHECKING:
    from mmrag.langchain.knowledge_base import KnowledgeBase
    from mmrag.model.clip import ClipModel


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that wait for the last background jobs run last (in their order), leaving the jobs the session.
    items.sort(key=lambda item: any(name in getattr(item, "fixturenames", ()) for name in LATE))
    if os.environ.get("MMRAG_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="needs real CLIP weights: set MMRAG_RUN_SLOW=1 on a machine that has them")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point mmrag's data dir at tmp_path and clear the user's MMRAG_* settings."""
    for key in list(os.environ):
        if key.startswith("MMRAG_") and not key.startswith("MMRAG_TEST_"):
            monkeypatch.delenv(key)
    home = tmp_path / "mmrag-home"
    monkeypatch.setenv("MMRAG_HOME", str(home))
    # Query texts on torch: the default (auto) would export a text tower to ONNX in the background for every
    # test's fresh home. tests/unit/test_onnx_text.py covers that runtime.
    monkeypatch.setenv("MMRAG_TEXT_RUNTIME", "torch")
    # OCR (on by default where the engine is installed) costs ~0.5 s an image even on drawings without text;
    # the OCR and PDF tests turn it on.
    monkeypatch.setenv("MMRAG_OCR", "off")
    return home


# --- background jobs: slow real processes that overlap the in-process tests (tests/support/background.py) ---

JOBS = (TOY_EXPORT, TINY_EXPORT, EXITS_WHILE_PREPARING, README_RUN)  # the order they run in
LATE = ("exits_while_preparing", "readme_run")  # the tests that wait for these run last


@pytest.fixture(scope="session")
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    jobs = Background(tmp_path_factory, os.environ)  # the environment before any test changes it
    yield jobs
    jobs.close()


@pytest.fixture(scope="session", autouse=True)
def _start_background_jobs(request: pytest.FixtureRequest, background: Background) -> None:
    """Start the jobs whose fixtures the selected tests use."""
    wanted = set().union(*(getattr(item, "fixturenames", ()) for item in request.session.items))
    for job in JOBS:
        if job.name in wanted:
            background.start(job, **{name: request.getfixturevalue(name) for name in job.needs})


# --- models ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised open_clip model saved as a local-dir: folder (fixed weights)."""
    from tests.support.tiny import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_model_id(tiny_model_dir: Path) -> str:
    return f"local-dir:{tiny_model_dir}"


@pytest.fixture(scope="session")
def tiny_clip(tiny_model_id: str) -> ClipModel:
    from mmrag.model.clip import ClipModel

    return ClipModel(tiny_model_id, device="cpu", batch_size=4, text_runtime="torch")


@pytest.fixture(scope="session")
def toy_clip() -> ClipModel:
    from mmrag.model.clip import ClipModel

    return ClipModel("toy", device="cpu", text_runtime="torch")


@pytest.fixture(scope="session")
def toy_onnx_export(background: Background) -> Path:
    """The toy's text tower exported to ONNX by the library, once per session (a background job)."""
    export: Path = background.result(TOY_EXPORT)
    return export


@pytest.fixture(scope="session")
def tiny_onnx_export(background: Background, tiny_model_id: str) -> Path:
    """The tiny model's text tower exported beside the toy's, once per session (a background job)."""
    export: Path = background.result(TINY_EXPORT, tiny_model_id=tiny_model_id)
    return export


@pytest.fixture(scope="session")
def onnx_dir(toy_onnx_export: Path, tiny_onnx_export: Path) -> Path:
    """The session's ONNX cache folder (a ``runtime_dir``), holding the toy's and the tiny model's exports."""
    assert toy_onnx_export.parent == tiny_onnx_export.parent
    return toy_onnx_export.parent


@pytest.fixture(scope="session")
def toy_onnx(onnx_dir: Path) -> ClipModel:
    """The toy model with query texts on ONNX Runtime, from the session's export (``toy_onnx_export``)."""
    from mmrag.model.clip import ClipModel

    clip = ClipModel("toy", device="cpu", text_runtime="onnx", runtime_dir=onnx_dir)
    clip.prepare_text_runtime()
    return clip


@pytest.fixture
def seed_onnx_cache(toy_onnx_export: Path) -> Callable[[Path], Path]:
    """``seed_onnx_cache(folder)`` copies the session's toy export into ``folder`` (a runtime_dir, e.g.
    ``MMRAG_HOME/onnx``), so that a test of a cached export doesn't pay for another one."""

    def seed(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copyfile(toy_onnx_export, folder / toy_onnx_export.name))

    return seed


@pytest.fixture(scope="session")
def exits_while_preparing(background: Background) -> ExitRuns:
    """Processes that exit while they prepare the toy's ONNX runtime, and what they left (a background job)."""
    runs: ExitRuns = background.result(EXITS_WHILE_PREPARING)
    return runs


# --- knowledge bases built once per session ----------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """The toy demo KB (48 images, 25 notes), as ``mmrag demo`` builds it. Read-only."""
    from tests.support.kbs import build_demo_kb

    return build_demo_kb(tmp_path_factory.mktemp("demo-kb"), per_class=2)


@pytest.fixture(scope="session")
def ui_demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller toy demo (one image per class, plus notes) for the UI tests: its directory. Copy it to write."""
    from tests.support.kbs import build_demo_kb

    return Path(build_demo_kb(tmp_path_factory.mktemp("ui-demo"), per_class=1).location)


@pytest.fixture(scope="session")
def tools_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    """The agents' KB: 4 toy classes, 2 images each, a note per class and one prompt-injection note. Read-only;
    its files are in ``support.kbs.kb_folder(tools_kb)``."""
    from tests.support.kbs import build_tools_kb

    return build_tools_kb(tmp_path_factory.mktemp("agents-kb"))


# --- recording and running -----------------------------------------------------------------------------------


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """The paths this test opens (files of any kind, by any API)."""
    with recording_opens() as paths:
        yield paths


@pytest.fixture
def mmrag_cli(_isolated_home: Path) -> MmragCli:
    """The ``mmrag`` command, in-process by default, with this test's isolated home (``tests/support/cli.py``)."""
    return MmragCli(_isolated_home)
