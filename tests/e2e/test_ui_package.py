"""The Streamlit page ships in the package: ``mmrag ui`` finds and runs it from a wheel install, no checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mmrag built as a wheel and unpacked into a folder of its own (its dependencies come from this venv)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = out.glob("mmrag-*.whl")
    target = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "mmrag/ui/page.py" in names
        assert "mmrag/ui/session.py" in names
        archive.extractall(target)
    return target


def test_mmrag_ui_runs_the_page_from_a_wheel_install(installed: Path, tmp_path: Path) -> None:
    """From a folder with no checkout, the installed mmrag finds its page and the page renders with the toy."""
    script = textwrap.dedent(
        """
        import sys
        import mmrag
        from mmrag.cli.ui import ui_script
        from streamlit.testing.v1 import AppTest

        page = ui_script()
        assert str(page).startswith(sys.argv[1]), (page, mmrag.__file__)
        app = AppTest.from_file(str(page), default_timeout=120).run()
        assert not app.exception, [e.value for e in app.exception]
        print("page", page)
        print("caption", " ".join(c.value for c in app.sidebar.caption))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")}
    env |= {
        "PYTHONPATH": str(installed),
        "MMRAG_HOME": str(tmp_path / "home"),
        "MMRAG_MODEL": "toy",
        "MMRAG_TEXT_RUNTIME": "torch",
    }
    proc = subprocess.run(
        [sys.executable, "-c", script, str(installed)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"page {installed / 'mmrag' / 'ui' / 'page.py'}" in proc.stdout
    assert "Model: `toy`" in proc.stdout


def test_the_checkout_launcher_runs_the_same_page() -> None:
    """``streamlit run ui/app.py`` in a checkout is a thin launcher over the packaged page."""
    launcher = (ROOT / "ui" / "app.py").read_text()
    assert "page.py" in launcher
    assert "import streamlit" not in launcher
