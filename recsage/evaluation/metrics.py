"""Metrics over ranked lists with one target per query.

`ranked` is an (n_queries, K) int array of item ids, best first, padded with -1 when a model
returned fewer than K items (those slots are misses).
"""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a (n, n_items) score matrix; ties broken by item id ascending.

    `-inf` scores are never returned (their slots become -1), so excluded items stay excluded.
    """
    n, m = scores.shape
    k_eff = min(k, m)
    if k_eff == 0:
        return np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf)
    # candidates: argpartition, then widen to include every item tied with the k-th score
    part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
    ids = np.full((n, k), -1, dtype=np.int64)
    vals = np.full((n, k), -np.inf)
    ties_present = (scores == kth).sum(axis=1) > (np.take_along_axis(scores, part, axis=1) == kth).sum(axis=1)
    for i in range(n):
        if ties_present[i]:
            cand = np.flatnonzero(scores[i] >= kth[i, 0])
        else:
            cand = part[i]
        order = np.lexsort((cand, -scores[i, cand]))[:k_eff]
        chosen = cand[order]
        chosen_vals = scores[i, chosen]
        ok = np.isfinite(chosen_vals) | (chosen_vals > 0)
        chosen, chosen_vals = chosen[ok], chosen_vals[ok]
        ids[i, : len(chosen)] = chosen
        vals[i, : len(chosen)] = chosen_vals
    return ids, vals


def hit_ranks(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each target in its list, or -1 when absent."""
    hits = ranked == np.asarray(targets)[:, None]
    found = hits.any(axis=1)
    return np.where(found, hits.argmax(axis=1), -1)


def recall_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    """= HR@K with one target per query."""
    ranks = hit_ranks(ranked[:, :k], targets)
    return float(np.mean(ranks >= 0)) if len(ranks) else 0.0


def ndcg_at_k(ranked: np.ndarray, targets: np.ndarray, k: int) -> float:
    ranks = hit_ranks(ranked[:, :k], targets)
    gains = np.where(ranks >= 0, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)
    return float(np.mean(gains)) if len(gains) else 0.0


def coverage(ranked: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-K list."""
    ids = ranked[:, :k]
    ids = ids[ids >= 0]
    return float(len(np.unique(ids)) / n_items) if n_items else 0.0


def gini(ranked: np.ndarray, n_items: int, k: int) -> float:
    """Gini index of how often each catalogue item appears in the top-K lists (0 = every item
    equally often, → 1 = all exposure on a few items); items never shown count as zero."""
    ids = ranked[:, :k]
    ids = ids[ids >= 0]
    if not n_items or not len(ids):
        return 0.0
    counts = np.sort(np.bincount(ids, minlength=n_items).astype(np.float64))
    idx = np.arange(1, n_items + 1)
    return float(((2 * idx - n_items - 1) * counts).sum() / (n_items * counts.sum()))
