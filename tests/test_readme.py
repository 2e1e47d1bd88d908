"""The README's commands and offline examples run as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_main_command_runs_offline() -> None:
    main = next(b for b in _blocks("bash") if b.startswith("mmrag --model toy"))
    args = shlex.split(main.strip())
    out = subprocess.run(
        [sys.executable, "-m", "mmrag", *args[1:]], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert "一个红色的圆形" in out
    assert out.count("dim=") == 2


def test_toy_python_example_runs() -> None:
    example = next(b for b in _blocks("python") if 'model_name="toy"' in b)
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, check=True).stdout
    dim, cosine = out.split()
    assert int(dim) > 0
    assert 0.5 < float(cosine) <= 1.0  # "a red circle" and "一个红色的圆形" mean the same to the toy model


def test_test_command_is_documented() -> None:
    assert "```bash\npytest\n```" in README.read_text(encoding="utf-8")
