"""Scores a recommender on a query set the same way for every model (full ranking)."""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from recsage.evaluation.metrics import coverage, gini, ndcg_at_k, recall_at_k


class _Recommends(Protocol):
    def recommend(self, histories: list[np.ndarray], k: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]: ...


def evaluate(
    recommender: _Recommends,
    queries: Any,
    ks: tuple[int, ...] = (1, 5, 10, 20, 50),
    *,
    n_items: int,
    exclude_seen: bool = True,
    batch_size: int = 1024,
    progress: bool = True,
) -> dict[str, float]:
    """Recall@K / NDCG@K / coverage@K averaged over *all* queries (empty histories count)."""
    kmax = max(ks)
    lists = []
    start = time.perf_counter()
    n = len(queries)
    for lo in tqdm(range(0, n, batch_size), desc="evaluate", unit="batch", disable=not progress or n <= batch_size):
        hist = queries.histories[lo : lo + batch_size]
        ids, _ = recommender.recommend(hist, k=kmax, exclude_seen=exclude_seen)
        lists.append(np.asarray(ids))
    ranked = np.concatenate(lists) if lists else np.empty((0, kmax), dtype=np.int64)
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranked, queries.targets, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranked, queries.targets, k)
        out[f"coverage@{k}"] = coverage(ranked, n_items, k)
        out[f"gini@{k}"] = gini(ranked, n_items, k)
    out["n_users"] = n
    out["eval_seconds"] = time.perf_counter() - start
    return out
