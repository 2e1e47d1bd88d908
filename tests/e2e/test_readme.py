"""The README's offline commands and every Python example run as written, in a fresh folder.

Every ```python block in README.md and docs/*.md runs; illustrative fragments that need a real LLM are
fenced as ```py and are not run. The commands run as real processes (``python -m mmrag``); the Python
examples run one after the other in one fresh interpreter, each in its own globals, as ``python -c`` would.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cli import run_entry_point
from tests.support.examples import ExampleRun, blocks, run_python_examples
from tests.support.repo import GUIDES, README


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[ExampleRun]]:
    """In a fresh folder: the README's offline commands (``mmrag demo``, then a search) as real processes,
    and every Python example once in the README's order. The examples and the search both only read the
    demo's knowledge base: they run side by side, after the demo."""
    folder = tmp_path_factory.mktemp("readme")
    home = folder / "home"
    offline = next(b for b in blocks("bash", README) if b.startswith("mmrag demo"))
    commands = [shlex.split(line) for line in offline.strip().splitlines()]
    assert [args[0] for args in commands] == ["mmrag", "mmrag"]
    examples = blocks("python", README) + [b for guide in GUIDES for b in blocks("python", guide)]
    # Query texts stay on torch (the runners' environment): an example that ran long enough would start an
    # ONNX export that outlives it.
    demo = run_entry_point(*commands[0][1:], home=home, cwd=folder, check=False)
    assert demo.exit_code == 0, demo.stderr
    with ThreadPoolExecutor(max_workers=2) as pool:
        search = pool.submit(run_entry_point, *commands[1][1:], home=home, cwd=folder, check=False)
        runs = pool.submit(run_python_examples, examples, cwd=folder, home=home)
        outputs = [demo.stdout]
        result = search.result()
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout)
        return folder, outputs, runs.result()


@pytest.fixture(scope="module")
def workdir(readme_run: tuple[Path, list[str], list[ExampleRun]]) -> Path:
    """The folder where the README's offline commands (mmrag demo, then a search) ran."""
    folder, outputs, _ = readme_run
    assert "added 73" in outputs[0]
    assert "red_circle" in outputs[1]
    return folder


@pytest.fixture(scope="module")
def outputs(workdir: Path, readme_run: tuple[Path, list[str], list[ExampleRun]]) -> dict[str, str]:
    """Each Python example, run once in the README's order: example → its stdout."""
    results = {}
    for run in readme_run[2]:
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
