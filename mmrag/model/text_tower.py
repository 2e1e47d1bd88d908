"""CLIP's text tower as one module that runs only the token positions a batch needs.

CLIP's text transformer is causal: the end-of-text token, whose output is the text's embedding, never
attends to the padding after it. So cutting the trailing padding (:func:`trim`) gives the same vectors (to
float rounding) for a fraction of the work: a 5-token query runs 5 positions, not 77.

:class:`TextTower` holds the model's text parts only (shared with the model, not copied), so its
``state_dict`` is exactly the text weights, and it exports to ONNX with dynamic batch and sequence
dimensions (see :mod:`mmrag.model.onnx_text`). This module imports torch; import it lazily.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from open_clip.transformer import text_global_pool

POOL_TYPES = ("argmax", "eos", "first")
"""Poolings that read a position at or before the end-of-text token (the only ones trimming keeps exact)."""


def supports(model: Any) -> bool:
    """Whether ``model`` has a plain causal CLIP text tower that :class:`TextTower` can run."""
    parts = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    if not all(getattr(model, name, None) is not None for name in parts):
        return False
    return getattr(model, "text_pool_type", "argmax") in POOL_TYPES


def trim(tokens: torch.Tensor) -> torch.Tensor:
    """Cut the padding columns (token id 0) that no text in the batch reaches."""
    length = int((tokens != 0).int().sum(dim=1).max().item()) if tokens.numel() else 1
    return tokens[:, : max(length, 1)]


class TextTower(torch.nn.Module):
    """Token ids (batch, positions) → unnormalised text features (batch, dim), for trimmed batches.

    Args:
        model: an open_clip ``CLIP`` whose text tower passes :func:`supports`.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.token_embedding: Any = model.token_embedding
        self.positional_embedding: Any = model.positional_embedding
        self.transformer: Any = model.transformer
        self.ln_final: Any = model.ln_final
        self.text_projection: Any = model.text_projection
        self.register_buffer("attn_mask", model.attn_mask, persistent=False)
        self.pool_type: str = getattr(model, "text_pool_type", "argmax")
        self.eos_id: int | None = getattr(model, "text_eos_id", None)
        self.cast = model.transformer.get_cast_dtype()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.token_embedding(tokens).to(self.cast) + self.positional_embedding[:n].to(self.cast)
        mask = cast("torch.Tensor", self.attn_mask)
        x = self.transformer(x, attn_mask=mask[:n, :n])
        x = self.ln_final(x)
        x = cast("torch.Tensor", text_global_pool(x, tokens, self.pool_type, eos_token_id=self.eos_id))
        if self.text_projection is None:
            return x
        if isinstance(self.text_projection, torch.nn.Linear):
            return cast("torch.Tensor", self.text_projection(x))
        return cast("torch.Tensor", x @ self.text_projection)
