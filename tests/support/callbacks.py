"""A callback handler that records every run it sees, for tests of traced Runnables."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler


class Runs(BaseCallbackHandler):
    """Every run a callback handler sees: kind, name, parent, tags and metadata."""

    def __init__(self) -> None:
        self.runs: dict[UUID, dict[str, Any]] = {}

    def _add(self, kind: str, run_id: UUID, kw: dict[str, Any]) -> None:
        self.runs[run_id] = {
            "kind": kind,
            "name": kw.get("name") or "",
            "parent": kw.get("parent_run_id"),
            "tags": kw.get("tags") or [],
            "metadata": kw.get("metadata") or {},
        }

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self._add("chain", run_id, kw)

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, **kw: Any) -> None:
        self._add("retriever", run_id, kw)

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any) -> None:
        self._add("llm", run_id, kw)

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, **kw: Any) -> None:
        self._add("tool", run_id, {"name": (serialized or {}).get("name"), **{k: v for k, v in kw.items() if v}})

    def ancestors(self, run_id: UUID) -> list[UUID]:
        """The run's parents, nearest first."""
        chain: list[UUID] = []
        parent = self.runs[run_id]["parent"]
        while parent is not None:
            chain.append(parent)
            parent = self.runs[parent]["parent"] if parent in self.runs else None
        return chain

    def kinds_under(self, parent: UUID) -> list[str]:
        return sorted(r["kind"] for r in self.runs.values() if r["parent"] == parent)
