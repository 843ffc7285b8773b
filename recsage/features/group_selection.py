"""Which feature groups the ranker keeps: backward elimination judged on its own training queries.

Why: "every signal present" should never rank worse than fewer signals. A group that carries
nothing for a dataset (a headline-reward score of film titles, say) still gets split on, and on a
few thousand validation queries that noise costs NDCG (measured: −0.3 to −2.4% on MovieLens-100K
and Scientific). The ranker's training queries are the only evidence it may look at, so the
choice is made by user-level k-fold cross-validation on them — test queries never enter it.
Measured (README, ranking stage): on MovieLens-100K's ~550 usable validation queries the CV
score is as noisy as most groups are useful, and the choice scored −1.8% ±3.7% against keeping
every group — so it is opt-in (`--select-groups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.features.pairs import feature_group
from recsage.recmodels.ranker import LambdaRanker, LambdaRankerConfig


def query_ndcg(query: np.ndarray, labels: np.ndarray, scores: np.ndarray, n_queries: int, k: int) -> np.ndarray:
    """NDCG@k per query with one relevant row (0 where the query's candidates miss it); a tie
    with the relevant row counts against it, so a constant scorer earns nothing by luck."""
    out = np.zeros(n_queries)
    pos = labels > 0
    pos_score = np.full(n_queries, np.nan)
    pos_score[query[pos]] = scores[pos]
    ahead = np.zeros(n_queries)
    np.add.at(ahead, query, (scores >= pos_score[query]) & ~pos)
    rank = ahead[query[pos]] + 1
    out[query[pos]] = np.where(rank <= k, 1 / np.log2(rank + 1), 0.0)
    return out


def cv_ndcg(data: Any, targets: np.ndarray, names: Sequence[str], config: LambdaRankerConfig, *, user_ids: np.ndarray,
            folds: int = 3, seed: int = 0, k: int = 10) -> float:
    """Mean NDCG@k of `names` over user-level folds of the query set: each fold's queries scored by
    a ranker trained on the other folds (all queries count; those whose candidates miss the target score 0)."""
    from recsage.features.two_stage import fit_ranker, user_folds

    n = len(targets)
    fold = user_folds(np.asarray(user_ids), folds, seed)
    labels = data.labels(targets)
    x = data.columns(names)
    total = 0.0
    for f in range(folds):
        ranker = fit_ranker(data, targets, names, config, user_ids=user_ids, seed=seed, queries=fold != f)
        rows = fold[data.query] == f
        total += query_ndcg(data.query[rows], labels[rows], ranker.predict(x[rows]), n, k).sum()
    return float(total / n)


def select_groups(data: Any, targets: np.ndarray, config: LambdaRankerConfig, *, user_ids: np.ndarray, groups: Sequence[str] | None = None,
                  keep: Sequence[str] = ("behaviour",), folds: int = 3, seed: int = 0, k: int = 10) -> tuple[list[str], list[dict[str, Any]]]:
    """Greedy backward elimination: drop the group whose removal raises the cross-validated NDCG@k
    most, while one does. Returns the kept groups (in their original order) and every step tried."""
    if folds < 2:
        raise InvalidInputError(f"group selection needs at least 2 folds, got {folds}", field="folds")
    present = [g for g in dict.fromkeys(feature_group(n) for n in data.names) if groups is None or g in groups]
    from recsage.features.two_stage import with_cv_rounds

    # every fold trains the kind of model (compact or early-stopped) the full query set gets, and
    # a compact one the number of rounds CV chose for every present group (not a CV inside each fold)
    compact = LambdaRanker(config).is_compact(int(np.unique(data.query[data.labels(targets) > 0]).size))
    config = with_cv_rounds(data, targets, [n for n in data.names if feature_group(n) in present], config, user_ids=user_ids, seed=seed)
    cfg = replace(config, compact_below_queries=10**12 if compact else 0)

    def score(gs: list[str]) -> float:
        return cv_ndcg(data, targets, [n for n in data.names if feature_group(n) in gs], cfg, user_ids=user_ids, folds=folds, seed=seed, k=k)

    current = list(present)
    best = score(current)
    trace = [{"groups": list(current), f"cv_ndcg@{k}": round(best, 5), "dropped": None}]
    while True:
        tried = [(score([g for g in current if g != d]), d) for d in current if d not in keep]
        for s, d in tried:
            trace.append({"groups": [g for g in current if g != d], f"cv_ndcg@{k}": round(s, 5), "dropped": d})
        if not tried:
            break
        s, d = max(tried)
        if s <= best:
            break
        current.remove(d)
        best = s
    return current, trace
