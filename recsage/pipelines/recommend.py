"""Fit and evaluate registered recommenders on a split."""

from __future__ import annotations

import time
from typing import Any

from recsage.datasets import Split
from recsage.evaluation import evaluate
from recsage.recmodels import RECOMMENDERS


def fit_recommender(method: str, split: Split, **params: Any):
    model = RECOMMENDERS.get(method)(**params)
    return model.fit(split.train, split.valid)


def evaluate_recommender(
    method: str, split: Split, ks: tuple[int, ...] = (5, 10, 20, 50), *, part: str = "test", progress: bool = True
) -> dict[str, Any]:
    """One flat result row: metrics + protocol + fit/total time."""
    t0 = time.perf_counter()
    model = fit_recommender(method, split)
    fit_s = time.perf_counter() - t0
    queries = split.test if part == "test" else split.valid
    metrics = evaluate(model, queries, ks, n_items=split.n_items, exclude_seen=split.exclude_seen, progress=progress)
    return {
        "method": method,
        "protocol": split.protocol,
        "exclude_seen": split.exclude_seen,
        "seeds": [0],
        "part": part,
        **metrics,
        "fit_seconds": round(fit_s, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }
