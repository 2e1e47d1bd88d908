"""The real entry point, ``python -m mmrag`` in a subprocess: imports, exit codes, errors on stderr.

Everything else about the CLI is tested in-process (tests/support/cli.py), which is several times faster.
Other real processes: test_readme.py runs the README's ``mmrag demo`` (an index) then ``mmrag search`` as
commands (the round trip, exit 0), test_browser.py serves ``mmrag ui``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.cli import MmragCli


def test_import_and_help_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import mmrag\n"
        "from mmrag import ClipEmbeddings, ClipModel, Settings\n"
        "sys.argv = ['mmrag', '--help']\n"
        "from mmrag.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', 'open_clip' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "Usage" in out
    assert out.strip().endswith("NO-TORCH False")


def test_errors_exit_1_with_a_message_and_usage_errors_exit_2(mmrag_cli: MmragCli, tmp_path: Path) -> None:
    missing = mmrag_cli.entry_point("index", str(tmp_path / "nope"), "--model", "toy", check=False)
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: ")
    assert "not a folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert missing.stdout == ""
    usage = mmrag_cli.entry_point("remove", check=False)
    assert usage.exit_code == 2
    assert "name at least one PATH or --id" in usage.stderr


def test_settings_come_from_the_process_environment(mmrag_cli: MmragCli, tools_kb: KnowledgeBase) -> None:
    bad = mmrag_cli.entry_point(
        "ask", "a blue star", "--db", tools_kb.location, env={"MMRAG_LLM": "no-such-provider:model"}, check=False
    )
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: cannot create the chat model 'no-such-provider:model'")
    assert "Traceback" not in bad.stderr
