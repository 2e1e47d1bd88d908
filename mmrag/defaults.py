"""Defaults of per-call options, in one light module: the CLI and the UI show them without loading the library.

The library's functions take these as their defaults; the surfaces import them rather than retyping them.
"""

from __future__ import annotations

DEFAULT_K = 6
"""Documents a search, a retriever, an answer or a tool returns, at most."""
DEFAULT_THRESHOLD = 0.8
"""Keep hits closer to the query than 80% of their own modality's documents (relevance = Φ(z) ≥ 0.8)."""
DEFAULT_LAMBDA = 0.5
"""MMR's default trade-off between relevance (1) and diversity (0)."""
MAX_K = 50
"""The most documents one answer retrieves."""
DEFAULT_MAX_K = 20
"""The most results one tool call returns (larger ``k`` is capped)."""
DEFAULT_MAX_LABELS = 50
"""The most labels one classification tool call takes."""
DEFAULT_MAX_STEPS = 8
"""Model calls an agent may make per question."""
DEFAULT_TIMEOUT_S = 60.0
"""Seconds an agent may spend per question."""
