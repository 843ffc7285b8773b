"""Metrics for engagement prediction and for ranking the comments under an item (pure functions)."""

from __future__ import annotations

import numpy as np


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(truth, float)) ** 2)))


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, float) - np.asarray(truth, float))))


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC with ties counted as half (rank formulation)."""
    from scipy.stats import rankdata

    label = np.asarray(label).astype(bool)
    n_pos, n_neg = int(label.sum()), int((~label).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def xauc(pred: np.ndarray, truth: np.ndarray, *, n_pairs: int = 200_000, seed: int = 0) -> float:
    """Share of random pairs with different true values that the prediction orders the same way
    (the duration-prediction XAUC; ties in the prediction count half)."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(pred), n_pairs), rng.integers(0, len(pred), n_pairs)
    keep = truth[i] != truth[j]
    i, j = i[keep], j[keep]
    if not len(i):
        return float("nan")
    agree = np.sign(pred[i] - pred[j]) * np.sign(truth[i] - truth[j])
    return float(np.mean(np.where(agree == 0, 0.5, agree > 0)))


def list_ranking_metrics(scores: np.ndarray, gains: np.ndarray, mask: np.ndarray, ks: tuple[int, ...] = (1, 3, 5)) -> dict[str, float]:
    """nDCG@k and MRR over short lists (rows of `scores`), `mask` marking real slots.

    Rows with fewer than two real slots or no positive gain are left out (nothing to rank).
    MRR is the reciprocal rank of the first slot holding the row's largest gain.
    """
    scores = np.where(mask, scores, -np.inf)
    gains = np.where(mask, np.maximum(gains, 0.0), 0.0)
    keep = (mask.sum(1) >= 2) & (gains.max(1) > 0)
    scores, gains = scores[keep], gains[keep]
    if not len(scores):
        return {**{f"ndcg@{k}": float("nan") for k in ks}, "mrr": float("nan"), "lists": 0}
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(gains, order, 1)
    ideal = -np.sort(-gains, axis=1)
    disc = 1.0 / np.log2(np.arange(2, gains.shape[1] + 2))
    out: dict[str, float] = {}
    for k in ks:
        dcg = (ranked[:, :k] * disc[:k]).sum(1)
        idcg = (ideal[:, :k] * disc[:k]).sum(1)
        out[f"ndcg@{k}"] = float(np.mean(dcg / idcg))
    best = ranked == gains.max(1, keepdims=True)
    out["mrr"] = float(np.mean(1.0 / (best.argmax(1) + 1)))
    out["lists"] = int(len(scores))
    return out
