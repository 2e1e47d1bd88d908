"""The README's offline commands and every Python example run as written, in a fresh folder.

Every ``mmrag`` command in the README's ```bash blocks runs (``mmrag ui``, a server, is the UI tests'), in
order: the first two (``mmrag demo``, a search) as real processes (``python -m mmrag``), the rest in one
interpreter; commands that need real weights or a chat model are fenced as ```sh and checked against the
CLI's own options. Every ```python block in README.md and docs/*.md runs; illustrative fragments that need
a real LLM are fenced as ```py and are not run. The Python examples run one after the other in one fresh
interpreter, each in its own globals, as ``python -c`` would (tests/support/examples.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.background import Background
from tests.support.cli import MmragCli
from tests.support.examples import README_RUN, ReadmeRun, blocks, python_examples, readme_commands
from tests.support.repo import README


@pytest.fixture(scope="module")
def readme_run(background: Background) -> ReadmeRun:
    """In a fresh folder: the README's offline commands (``mmrag demo``, then a search) as real processes, and
    every Python example once in the README's order (started as the session starts: a background job)."""
    return background.result(README_RUN)


@pytest.fixture(scope="module")
def workdir(readme_run: ReadmeRun) -> Path:
    """The folder where the README's offline commands (mmrag demo, a search, then all the others) ran."""
    for result in readme_run.commands:
        assert result.exit_code == 0, f"mmrag {' '.join(result.args)}\n{result.stdout}\n{result.stderr}"
    outputs = [result.stdout for result in readme_run.commands]
    assert len(outputs) == len(readme_commands())
    assert "added 73" in outputs[0]
    assert "red_circle" in outputs[1]
    return readme_run.folder


def _said(readme_run: ReadmeRun, start: str) -> str:
    """The output of the first README command whose line starts with ``start``."""
    lines = [c.line for c in readme_commands()]
    index = next(i for i, line in enumerate(lines) if line.startswith(start))
    return readme_run.commands[index].stdout


def test_every_offline_command_runs_and_says_what_it_should(workdir: Path, readme_run: ReadmeRun) -> None:
    assert len(readme_commands()) >= 15
    image_hits = _said(readme_run, 'mmrag search "a red circle" --db demo-kb -k 5').strip().splitlines()
    assert 1 <= len(image_hits) <= 5  # at most k: only what is relevant (the demo has 2 red circles)
    assert all(" image " in hit and "red_circle" in hit for hit in image_hits)
    assert "blue_star" in json.loads(_said(readme_run, 'mmrag search "一个蓝色的星形"'))[0]["source"]
    assert "green_square" in _said(readme_run, 'echo "a green square"').splitlines()[0]
    assert _said(readme_run, "mmrag classify").splitlines()[0].split("  (fits")[0].endswith("red circle")
    assert json.loads(_said(readme_run, "mmrag match"))["match"] is True
    assert "no llm was used" in _said(readme_run, 'mmrag ask "what does').lower()
    assert json.loads(_said(readme_run, 'echo "which shapes are blue?"'))["question"] == "which shapes are blue?"
    assert "mmrag chat over" in _said(readme_run, "mmrag chat")
    assert re.search(r"model\s+toy", _said(readme_run, "mmrag status"))
    assert "removed 1 document" in _said(readme_run, "mmrag remove")
    assert json.loads(_said(readme_run, "mmrag index demo-files --db demo-kb --json"))["added"] == 1  # back again
    assert json.loads(_said(readme_run, "mmrag embed"))["model"] == "toy"
    assert _said(readme_run, "mmrag --version").startswith("mmrag ")


def test_commands_that_need_weights_use_real_options(mmrag_cli: MmragCli) -> None:
    """The ```sh commands (real weights, a chat model) can't run here: their options must exist."""
    commands = readme_commands("sh")
    assert len(commands) >= 5
    for command in commands:
        name = command.args[0]
        helptext = mmrag_cli(name, "--help", env={"COLUMNS": "250"}).stdout
        for word in command.args[1:]:
            if word.startswith("-") and word != "-":
                assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", helptext, flags=re.M), (command.line, word)


def test_where_options_go_and_install_size_are_documented() -> None:
    text = README.read_text(encoding="utf-8")
    assert "**Where options go.**" in text
    assert "https://download.pytorch.org/whl/cpu" in text
    two = text[text.index("## The two commands") : text.index("## Try it offline")]
    assert blocks("bash", README)[1:3] == ["mmrag ui --index sample_kb\n", "pytest\n"]
    assert two.count("```bash") == 2
    ignored = (README.parent / ".gitignore").read_text(encoding="utf-8").split()
    assert "/demo-files/" in ignored
    assert "/demo-kb/" in ignored


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
