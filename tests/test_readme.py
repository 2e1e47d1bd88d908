"""The README's offline commands and every Python example run as written, in a fresh folder.

Every ```python block in README.md and docs/*.md runs; illustrative fragments that need a real LLM are
fenced as ```py and are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
GUIDES = sorted((Path(__file__).parent.parent / "docs").glob("*.md"))


def _blocks(lang: str, path: Path = README) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def _env(folder: Path) -> dict[str, str]:
    """The user's environment without MMRAG_* settings, with mmrag's home in ``folder``. Query texts stay on
    torch: an example that ran long enough would start an ONNX export that outlives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
    return env | {"MMRAG_HOME": str(folder / "home"), "MMRAG_TEXT_RUNTIME": "torch"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the README's offline commands (mmrag demo, then a search) in a fresh folder."""
    folder = tmp_path_factory.mktemp("readme")
    offline = next(b for b in _blocks("bash") if b.startswith("mmrag demo"))
    outputs = []
    for line in offline.strip().splitlines():
        args = shlex.split(line)
        assert args[0] == "mmrag"
        proc = subprocess.run(
            [sys.executable, "-m", "mmrag", *args[1:]],
            cwd=folder,
            env=_env(folder),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert "added 73" in outputs[0]
    assert "red_circle" in outputs[1]
    return folder


@pytest.fixture(scope="module")
def outputs(workdir: Path) -> dict[str, str]:
    """Each Python example, run once in the README's order: example → its stdout."""
    results = {}
    for example in _blocks("python") + [b for guide in GUIDES for b in _blocks("python", guide)]:
        proc = subprocess.run(
            [sys.executable, "-c", example], cwd=workdir, env=_env(workdir), capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"{example}\n{proc.stderr}"
        results[example] = proc.stdout
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
