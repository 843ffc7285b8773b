"""Building blocks shared by the torch recommenders (one copy, not one per model)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ItemEncoder(nn.Module):
    """Item id embedding (+ optional side-information projection): the one side-info hook.

    `side_features` (n_items, d) — text embeddings now, TagCF graph features or LLM signals
    later — are a frozen buffer projected into the model width and added to the id embedding,
    so any model gets them the same way and an ablation only toggles this argument.
    Index 0 is padding; item i is stored at i + 1.
    """

    def __init__(self, n_items: int, dim: int, side_features: np.ndarray | None = None) -> None:
        super().__init__()
        self.n_items = n_items
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.embedding.weight, std=0.02)
        if side_features is not None:
            side = torch.as_tensor(np.asarray(side_features, dtype=np.float32))
            if side.shape[0] != n_items:
                raise ValueError(f"side_features has {side.shape[0]} rows for {n_items} items")
            self.register_buffer("side", torch.cat([torch.zeros(1, side.shape[1]), side]))
            self.side_proj = nn.Linear(side.shape[1], dim)
        else:
            self.side = None
            self.side_proj = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)
        if self.side_proj is not None:
            x = x + self.side_proj(self.side[ids])
        return x

    def all_items(self) -> torch.Tensor:
        """(n_items, dim) output embeddings for full-softmax scoring (padding row excluded)."""
        ids = torch.arange(1, self.n_items + 1, device=self.embedding.weight.device)
        return self.forward(ids)


class CausalEncoder(nn.Module):
    """Pre-norm transformer with a causal mask and learned positions (SASRec's backbone)."""

    def __init__(self, dim: int, n_layers: int, n_heads: int, max_len: int, dropout: float) -> None:
        super().__init__()
        self.position = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, n_heads, dim_feedforward=dim * 4, dropout=dropout, batch_first=True, norm_first=True, activation="gelu")
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """Like the original SASRec, padding is zeroed rather than masked as keys: with left
        padding a key mask would leave padded query rows with nothing to attend to (NaN)."""
        n = x.shape[1]
        keep = (~pad_mask).unsqueeze(-1).to(x.dtype)
        pos = torch.arange(n, device=x.device)
        x = self.dropout(x + self.position(pos)[None]) * keep
        causal = torch.triu(torch.full((n, n), float("-inf"), device=x.device), diagonal=1)
        h = self.layers(x, mask=causal, is_causal=True)
        return self.norm(h) * keep


def left_pad(histories: list[np.ndarray], max_len: int) -> torch.Tensor:
    """Last `max_len` items of each history, shifted by +1 (0 = padding), right-aligned."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for i, h in enumerate(histories):
        h = np.asarray(h)[-max_len:]
        if len(h):
            out[i, -len(h):] = h + 1
    return torch.from_numpy(out)
