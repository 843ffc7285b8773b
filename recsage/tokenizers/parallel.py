"""Parallel Semantic Encoding (DiffGRM's codebook): digits that do not depend on each other.

Residual codebooks make digit 1 carry most of the information and every later digit meaningless
without its prefix — right for left-to-right decoding, wrong for a denoiser that may fill any
digit first. Here the item vectors are rotated to principal components, the components are dealt
to the L digits so that each digit gets the same share of the variance (greedy: the next-largest
component goes to the digit with the least variance so far, while it has room), and each digit
is k-means over its own components. Digits are decoupled (a product quantiser) and balanced.
"""

from __future__ import annotations

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.tokenizers.base import Quantizer, check_vectors
from recsage.tokenizers.rqkmeans import RQKMeansConfig, kmeans, nearest


def balanced_groups(variances: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups, width) component indices: equal widths, variance dealt as evenly as the greedy allows."""
    width = len(variances) // n_groups
    total = np.zeros(n_groups)
    groups: list[list[int]] = [[] for _ in range(n_groups)]
    for comp in np.argsort(-variances, kind="stable")[: width * n_groups]:
        open_ = [g for g in range(n_groups) if len(groups[g]) < width]
        g = min(open_, key=lambda j: total[j])
        groups[g].append(int(comp))
        total[g] += variances[comp]
    return np.array(groups, dtype=np.int64)


class ParallelSemanticTokenizer(Quantizer):
    config_class = RQKMeansConfig  # the same knobs: digits, codes per digit, k-means iterations, seed
    registry_name = "parallel"

    def fit(self, x: np.ndarray) -> ParallelSemanticTokenizer:
        x = self._check_fit_input(x)
        c = self.config
        if x.shape[1] < c.n_levels:
            raise InvalidInputError(f"{c.n_levels} parallel digits need at least as many vector dimensions, got {x.shape[1]}", field="n_levels")
        self.mean_ = x.mean(0)
        _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=False)
        variances = s ** 2 / max(len(x) - 1, 1)
        self.groups_ = balanced_groups(variances, c.n_levels)
        self.rotation_ = vt.T.astype(np.float32)  # (d, components)
        z = self._rotate(x)
        self.codebooks_ = np.stack([kmeans(np.ascontiguousarray(z[:, g]), c.n_codes, c.n_iter, c.seed + lv) for lv, g in enumerate(self.groups_)]).astype(np.float32)
        self.digit_variance_ = variances[self.groups_].sum(1)
        self.fitted_ = True
        return self

    def _rotate(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean_) @ self.rotation_

    def transform(self, x: np.ndarray) -> np.ndarray:
        self._check_fitted()
        z = self._rotate(check_vectors(x))
        return np.stack([nearest(np.ascontiguousarray(z[:, g]), self.codebooks_[lv])[0] for lv, g in enumerate(self.groups_)], 1)

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """Back in the input space (components no digit kept are left at the mean)."""
        self._check_fitted()
        z = np.zeros((len(codes), self.rotation_.shape[1]), dtype=np.float32)
        for lv, g in enumerate(self.groups_):
            z[:, g] = self.codebooks_[lv][codes[:, lv]]
        return z @ self.rotation_.T + self.mean_

    def candidate_last_codes(self, x: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
        last = self.n_levels - 1
        z = self._rotate(check_vectors(x))[:, self.groups_[last]]
        _, d2 = nearest(np.ascontiguousarray(z), self.codebooks_[last])
        return np.argsort(d2, axis=1, kind="stable")[:, :k]

    def _state(self) -> dict[str, np.ndarray]:
        return {"codebooks": self.codebooks_, "mean": self.mean_, "rotation": self.rotation_, "groups": self.groups_}

    def _load_state(self, tensors: dict[str, np.ndarray]) -> None:
        self.codebooks_, self.mean_, self.rotation_, self.groups_ = (tensors[k] for k in ("codebooks", "mean", "rotation", "groups"))
