"""User-role identification from behaviour alone, with the baselines it must beat.

Each role group (occupation, age, gender) is a separate single-label problem: scores are
compared only within the group. Evaluation uses users whose profiles were never used to build
the graph (pass only training users' roles to `RoleGraph.build`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from recsage.knowledge.tagcf.features import user_topic_counts
from recsage.knowledge.tagcf.graph import RoleGraph


TEMPERATURES = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0)


def graph_loglik(histories: Sequence[np.ndarray], item_topic: np.ndarray, graph: RoleGraph, smoothing: float = 1e-3) -> np.ndarray:
    """Σ_t share_u(t) · log P(t | role) for every user and role: how well each role's topic
    profile in the graph explains the user's topic shares (n_users, n_roles)."""
    counts = user_topic_counts(histories, item_topic)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
    r2t = graph.role_to_topic.astype(np.float64) + smoothing
    r2t /= r2t.sum(axis=1, keepdims=True)
    return shares @ np.log(r2t).T


def fit_temperature(train_hist: Sequence[np.ndarray], item_topic: np.ndarray, graph: RoleGraph, train_roles: pd.DataFrame, *, smoothing: float = 1e-3) -> float:
    """Tempered naive Bayes: the evidence weight τ (how many "effective" topic draws a history is
    worth) that maximises the log-likelihood of the training users' true roles."""
    ll = graph_loglik(train_hist, item_topic, graph, smoothing)
    prior = _log_prior(graph, train_roles)
    r_idx = {r: i for i, r in enumerate(graph.roles)}
    best, best_tau = -np.inf, 0.0
    for tau in TEMPERATURES:
        total = 0.0
        for g in [c for c in train_roles.columns if c != "user_id"]:
            cols = [r_idx[r] for r in sorted(train_roles[g].unique()) if r in r_idx]
            s = tau * ll[:, cols] + prior[cols]
            s = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
            pos = {c: j for j, c in enumerate(cols)}
            total += sum(s[u, pos[r_idx[r]]] for u, r in enumerate(train_roles[g]) if r in r_idx)
        if total > best:
            best, best_tau = total, tau
    return best_tau


def _log_prior(graph: RoleGraph, train_roles: pd.DataFrame) -> np.ndarray:
    prior = np.full(len(graph.roles), 1e-6)
    r_idx = {r: i for i, r in enumerate(graph.roles)}
    for g in [c for c in train_roles.columns if c != "user_id"]:
        for r, p in train_roles[g].value_counts(normalize=True).items():
            if r in r_idx:
                prior[r_idx[r]] = p
    return np.log(prior)


def graph_role_scores(histories: Sequence[np.ndarray], item_topic: np.ndarray, graph: RoleGraph, train_roles: pd.DataFrame, *,
                      temperature: float = 30.0, smoothing: float = 1e-3) -> np.ndarray:
    """Naive Bayes through the graph: log P(role) + τ · Σ_t share_u(t) · log P(t | role), with
    P(t | role) the role→topic edge weights. Returns (n_users, n_roles); compare within a group."""
    return temperature * graph_loglik(histories, item_topic, graph, smoothing) + _log_prior(graph, train_roles)


def majority_prediction(train_roles: pd.DataFrame, group: str, n: int) -> list[list[str]]:
    ranked = train_roles[group].value_counts().index.tolist()
    return [ranked[:3]] * n


def topic_frequency_prediction(train_hist: Sequence[np.ndarray], train_roles: pd.DataFrame, test_hist: Sequence[np.ndarray], item_topic: np.ndarray, group: str) -> list[list[str]]:
    """Baseline: a user's most frequent topic → the roles most common among training users whose
    most frequent topic is the same (majority order when the topic was never anyone's top)."""
    top_train = user_topic_counts(train_hist, item_topic).argmax(axis=1)
    top_test = user_topic_counts(test_hist, item_topic).argmax(axis=1)
    overall = train_roles[group].value_counts().index.tolist()
    by_topic = {}
    for t in np.unique(top_train):
        ranked = train_roles[group][top_train == t].value_counts().index.tolist()
        by_topic[int(t)] = (ranked + [r for r in overall if r not in ranked])[:3]
    return [by_topic.get(int(t), overall[:3]) for t in top_test]


def ranked_from_scores(scores: np.ndarray, roles: Sequence[str], allowed: Sequence[str], k: int = 3) -> list[list[str]]:
    """Top-k roles of one group from a (n_users, n_roles) score matrix."""
    cols = [i for i, r in enumerate(roles) if r in set(allowed)]
    if not cols:
        return [[] for _ in range(len(scores))]
    sub = scores[:, cols]
    order = np.argsort(-sub, axis=1, kind="stable")[:, :k]
    return [[roles[cols[j]] for j in row] for row in order]


def role_metrics(truth: Sequence[str], ranked: Sequence[Sequence[str]]) -> dict[str, float]:
    truth = list(truth)
    top1 = [r[0] if r else "" for r in ranked]
    return {
        "top1_acc": round(float(np.mean([t == p for t, p in zip(truth, top1)])), 4),
        "top3_acc": round(float(np.mean([t in r[:3] for t, r in zip(truth, ranked)])), 4),
        "macro_f1": round(float(f1_score(truth, top1, average="macro", labels=sorted(set(truth)), zero_division=0)), 4),
        "users": len(truth),
    }
