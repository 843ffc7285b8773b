"""Item vectors to quantize: text, collaborative (co-occurrence SVD), or a fusion of both.

The fusion is the S²GR-style pre-fusion step: items consumed together are pulled toward each
other (graph smoothing over the co-occurrence graph) before quantization, so they tend to share
coarse codes, while the text keeps codes semantically meaningful.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsage.core.errors import InvalidInputError


def item_text(items: pd.DataFrame, max_description_chars: int = 300) -> list[str]:
    """title + brand + categories + description (truncated); an item with none of them is an error."""
    texts = []
    for pos, row in enumerate(items.itertuples(index=False)):
        parts = [str(getattr(row, "title", "") or "")]
        brand = str(getattr(row, "brand", "") or "")
        if brand:
            parts.append(f"Brand: {brand}")
        cats = getattr(row, "categories", None)
        if cats is not None and len(cats):
            parts.append("Categories: " + ", ".join(map(str, cats)))
        desc = str(getattr(row, "description", "") or "")
        if desc:
            parts.append(desc[:max_description_chars])
        text = ". ".join(p for p in parts if p.strip())
        if not text.strip():
            raise InvalidInputError("item has no text (title, brand, categories and description all empty)", record=f"item {getattr(row, 'raw_id', pos)}", field="title")
        texts.append(text)
    return texts


def cooccurrence_matrix(sequences: Sequence[np.ndarray], n_items: int, window: int = 3) -> sp.csr_matrix:
    """Symmetric counts of items appearing within `window` steps of each other in a sequence."""
    rows, cols = [], []
    for s in sequences:
        s = np.asarray(s)
        for off in range(1, window + 1):
            if len(s) > off:
                rows.append(s[:-off])
                cols.append(s[off:])
    if not rows:
        return sp.csr_matrix((n_items, n_items))
    r, c = np.concatenate(rows), np.concatenate(cols)
    m = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n_items, n_items))
    m = m + m.T
    m.setdiag(0)
    m.eliminate_zeros()
    return m.tocsr()


def collaborative_vectors(sequences: Sequence[np.ndarray], n_items: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Truncated SVD of the PPMI co-occurrence matrix: items used together get nearby vectors."""
    from scipy.sparse.linalg import svds

    co = cooccurrence_matrix(sequences, n_items).tocoo()
    if co.nnz == 0:
        raise InvalidInputError("no co-occurrences: need sequences with at least two items", field="sequences")
    total = co.data.sum()
    row_sum = np.asarray(co.sum(axis=1)).ravel()
    pmi = np.log(co.data * total / (row_sum[co.row] * row_sum[co.col]))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (co.row[keep], co.col[keep])), shape=(n_items, n_items))
    k = min(dim, n_items - 2)
    rng = np.random.default_rng(seed)
    u, s, _ = svds(ppmi.astype(np.float64), k=k, v0=rng.standard_normal(n_items))
    vec = u * np.sqrt(s)[None, :]
    # items with no co-occurrence get a zero row; give them a tiny random direction instead
    empty = np.linalg.norm(vec, axis=1) == 0
    vec[empty] = rng.standard_normal((int(empty.sum()), k)) * 1e-3
    return (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)


def fuse_with_cooccurrence(vectors: np.ndarray, sequences: Sequence[np.ndarray], gamma: float = 0.5) -> np.ndarray:
    """x' = (1 − γ)·x + γ·(mean of co-consumed items' x), renormalised (one smoothing step)."""
    if not 0.0 <= gamma <= 1.0:
        raise InvalidInputError(f"gamma must be in [0, 1], got {gamma}", field="gamma")
    n = len(vectors)
    co = cooccurrence_matrix(sequences, n)
    deg = np.asarray(co.sum(axis=1)).ravel()
    neigh = sp.diags(1.0 / np.maximum(deg, 1.0)) @ co @ vectors
    fused = np.where(deg[:, None] > 0, (1 - gamma) * vectors + gamma * neigh, vectors)
    return (fused / np.maximum(np.linalg.norm(fused, axis=1, keepdims=True), 1e-12)).astype(np.float32)
