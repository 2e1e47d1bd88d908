"""What each entry path imports, checked in fresh processes: no LangGraph without an agent, no LangChain below it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def _fresh(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_answering_without_an_agent_never_imports_langgraph(tmp_path: Path) -> None:
    """``mmrag ask`` without ``--agent`` (library side: factory, answer, chat models) loads no LangGraph."""
    out = _fresh(
        f"""
        import sys
        from mmrag import answer_question, open_knowledge_base
        from mmrag.langchain import chat_models  # noqa: F401  (what ask imports for --llm)
        kb = open_knowledge_base(db={str(tmp_path / "kb")!r}, home={str(tmp_path / "home")!r}, model="toy",
                                 text_runtime="torch")
        answer = answer_question(kb, "a red circle", None)
        print(answer.llm_used, any(m == "langgraph" or m.startswith("langgraph.") for m in sys.modules))
        """
    )
    assert out.split() == ["False", "False"]


def test_search_layers_import_no_langchain() -> None:
    """Calibrated search, the store and the model work without LangChain being imported at all."""
    out = _fresh(
        """
        import sys
        import mmrag.search.searcher, mmrag.search.similar, mmrag.search.zeroshot, mmrag.kb.sync, mmrag.kb.guard
        print(sorted({m.split(".")[0] for m in sys.modules} & {"langchain", "langchain_core", "langgraph",
                                                              "streamlit", "torch"}))
        """
    )
    assert out.strip() == "[]"
