"""Balanced residual k-means: every code at every level holds about n / K items.

Equal-size clusters keep codebook utilisation high and spread items over the code space, which
is what drives the collision rate down. Assignment is capacity-constrained: a Sinkhorn
(entropic optimal-transport) step with uniform code marginals gives each item a soft preference,
then items are placed greedily, most confident first, into the best code that still has room.

The last level is balanced where collisions happen: inside each prefix (the codes of the levels
above). With `leaf_capacity=1` every full SID holds at most one item as long as no prefix has
more than `n_codes` items, so the quantizer itself is (nearly) collision-free — the
capacity-constrained leaf assignment LETTER/Sinkhorn-style tokenizers use — and the
collision handling step has almost nothing left to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsage.tokenizers.base import check_vectors
from recsage.tokenizers.rqkmeans import ResidualKMeansTokenizer, kmeans, nearest


@dataclass(frozen=True)
class BalancedRQKMeansConfig:
    n_levels: int = 3
    n_codes: int = 256
    n_iter: int = 25
    balance_iter: int = 5  # rounds of (balanced assignment, centroid update) after k-means
    sinkhorn_iter: int = 50
    epsilon: float = 0.05  # Sinkhorn temperature, relative to the mean distance
    leaf_capacity: int = 1  # items per full SID at the last level, per prefix; 0 = global balance only
    seed: int = 0


def sinkhorn_plan(d2: np.ndarray, epsilon: float, n_iter: int) -> np.ndarray:
    """Soft assignment with rows summing to 1/n and columns to 1/K (log domain for stability)."""
    n, k = d2.shape
    scale = d2.mean() + 1e-12
    log_k = -d2 / (epsilon * scale)
    log_r = np.full(n, -np.log(n))
    log_c = np.full(k, -np.log(k))
    u = np.zeros(n)
    v = np.zeros(k)
    for _ in range(n_iter):
        u = log_r - _logsumexp(log_k + v[None, :], axis=1)
        v = log_c - _logsumexp(log_k + u[:, None], axis=0)
    return log_k + u[:, None] + v[None, :]


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def capacity_assign(scores: np.ndarray, capacity: int) -> np.ndarray:
    """Greedy: items in order of how sure they are; each takes its best code with room left."""
    n, k = scores.shape
    order_codes = np.argsort(-scores, axis=1, kind="stable")
    margin = np.take_along_axis(scores, order_codes[:, :1], 1)[:, 0] - np.take_along_axis(scores, order_codes[:, 1:2], 1)[:, 0] if k > 1 else np.zeros(n)
    load = np.zeros(k, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    for i in np.argsort(-margin, kind="stable"):
        for c in order_codes[i]:
            if load[c] < capacity:
                out[i] = c
                load[c] += 1
                break
    return out


class BalancedRQKMeansTokenizer(ResidualKMeansTokenizer):
    config_class = BalancedRQKMeansConfig
    registry_name = "balanced"

    def _balanced(self, residual: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        c = self.config
        _, d2 = nearest(residual, centroids)
        plan = sinkhorn_plan(d2, c.epsilon, c.sinkhorn_iter)
        capacity = int(np.ceil(len(residual) / c.n_codes))
        return capacity_assign(plan, capacity)

    def _fit_level(self, level: int, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        centroids = kmeans(residual, c.n_codes, c.n_iter, c.seed + level)
        codes = self._balanced(residual, centroids)
        for _ in range(c.balance_iter):
            sums = np.zeros_like(centroids)
            np.add.at(sums, codes, residual)
            counts = np.bincount(codes, minlength=c.n_codes)[:, None]
            centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids).astype(np.float32)
            codes = self._balanced(residual, centroids)
        return centroids, codes

    def _assign(self, level: int, residual: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        # new items at transform time: balanced when a batch is large enough to balance, else nearest
        if len(residual) >= self.config.n_codes:
            return self._balanced(residual, centroids)
        return nearest(residual, centroids)[0]

    def _leaf_codes(self, residual: np.ndarray, prefix: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        """Last-level codes with at most `leaf_capacity` items per (prefix, code)."""
        codes, d2 = nearest(residual, centroids)
        _, group = np.unique(prefix, axis=0, return_inverse=True)
        group = group.reshape(-1)
        sizes = np.bincount(group)
        cap = self.config.leaf_capacity
        for g in np.flatnonzero(sizes > cap):
            rows = np.flatnonzero(group == g)
            codes[rows] = capacity_assign(-d2[rows], max(cap, int(np.ceil(len(rows) / centroids.shape[0]))))
        return codes

    def transform(self, x: np.ndarray) -> np.ndarray:
        codes = super().transform(x)
        if self.config.leaf_capacity and self.n_levels > 1:
            last = self.n_levels - 1
            r = self._residual_before(check_vectors(x), codes, last)
            codes[:, last] = self._leaf_codes(r, codes[:, :last], self.codebooks_[last])
        return codes
