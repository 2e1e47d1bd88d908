"""The README's offline commands and every Python example run as written, in a fresh folder.

Every ```python block in README.md and docs/*.md runs; illustrative fragments that need a real LLM are
fenced as ```py and are not run. The commands run as real processes (``python -m mmrag``); the Python
examples run one after the other in one fresh interpreter, each in its own globals, as ``python -c`` would
(tests/support/examples.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.background import Background
from tests.support.examples import README_RUN, ReadmeRun, python_examples, readme_commands
from tests.support.repo import README


@pytest.fixture(scope="module")
def readme_run(background: Background) -> ReadmeRun:
    """In a fresh folder: the README's offline commands (``mmrag demo``, then a search) as real processes, and
    every Python example once in the README's order (started as the session starts: a background job)."""
    return background.result(README_RUN)


@pytest.fixture(scope="module")
def workdir(readme_run: ReadmeRun) -> Path:
    """The folder where the README's offline commands (mmrag demo, then a search) ran."""
    for result in readme_run.commands:
        assert result.exit_code == 0, result.stderr
    outputs = [result.stdout for result in readme_run.commands]
    assert len(outputs) == len(readme_commands())
    assert "added 73" in outputs[0]
    assert "red_circle" in outputs[1]
    return readme_run.folder


@pytest.fixture(scope="module")
def outputs(workdir: Path, readme_run: ReadmeRun) -> dict[str, str]:
    """Each Python example, run once in the README's order: example → its stdout."""
    assert len(readme_run.examples) == len(python_examples())
    results = {}
    for run in readme_run.examples:
        assert run.ok, f"{run.example}\n{run.stderr}"
        results[run.example] = run.stdout
    return results


def _output(outputs: dict[str, str], marker: str) -> list[str]:
    return next(out for example, out in outputs.items() if marker in example).strip().splitlines()


def test_every_python_example_runs(outputs: dict[str, str]) -> None:
    assert len(outputs) >= 4
    assert all(out.strip() for out in outputs.values())


def test_examples_print_what_they_promise(outputs: dict[str, str]) -> None:
    assert _output(outputs, "FakeListChatModel") == ["A red circle."]
    assert "blue_star" in _output(outputs, "一个蓝色的星形")[0]
    similar, best, verdict = _output(outputs, "ZeroShotClassifier")
    assert "blue_circle" in similar
    assert (best, verdict) == ("red circle", "True")
    dim, cosine = _output(outputs, 'model_name="toy"')[0].split()
    assert int(dim) > 0
    assert 0.5 < float(cosine) <= 1.0  # "a red circle" and "一个红色的圆形" mean the same to the toy model


def test_commands_are_documented() -> None:
    text = README.read_text(encoding="utf-8")
    assert "```bash\npytest\n```" in text
    assert "```bash\nmmrag ui --index sample_kb\n```" in text
