"""Residual k-means (RQ-KMeans) on faiss: level l clusters what levels < l left unexplained."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsage.tokenizers.base import Quantizer, check_vectors


@dataclass(frozen=True)
class RQKMeansConfig:
    n_levels: int = 3
    n_codes: int = 256
    n_iter: int = 25
    seed: int = 0


def kmeans(x: np.ndarray, k: int, n_iter: int, seed: int) -> np.ndarray:
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=n_iter, seed=seed, verbose=False, max_points_per_centroid=100_000, min_points_per_centroid=1)
    km.train(x)
    return km.centroids.copy()


def nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid per row (exact, faiss flat L2) and squared distances to all centroids."""
    d2 = (x * x).sum(1, keepdims=True) - 2 * x @ centroids.T + (centroids * centroids).sum(1)[None, :]
    return d2.argmin(axis=1).astype(np.int64), d2


class ResidualKMeansTokenizer(Quantizer):
    config_class = RQKMeansConfig
    registry_name = "rqkmeans"

    def _assign(self, level: int, residual: np.ndarray, centroids: np.ndarray) -> np.ndarray:
        return nearest(residual, centroids)[0]

    def _fit_level(self, level: int, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        centroids = kmeans(residual, c.n_codes, c.n_iter, c.seed + level)
        return centroids, self._assign(level, residual, centroids)

    def fit(self, x: np.ndarray) -> ResidualKMeansTokenizer:
        x = self._check_fit_input(x)
        residual = x.copy()
        books = []
        for level in range(self.config.n_levels):
            centroids, codes = self._fit_level(level, residual)
            books.append(centroids)
            residual = residual - centroids[codes]
        self.codebooks_ = np.stack(books).astype(np.float32)  # (L, K, d)
        self.fitted_ = True
        return self

    def _residual_before(self, x: np.ndarray, codes: np.ndarray, level: int) -> np.ndarray:
        r = x.copy()
        for lv in range(level):
            r -= self.codebooks_[lv][codes[:, lv]]
        return r

    def transform(self, x: np.ndarray) -> np.ndarray:
        self._check_fitted()
        x = check_vectors(x)
        residual = x.copy()
        codes = np.zeros((len(x), self.n_levels), dtype=np.int64)
        for level in range(self.n_levels):
            codes[:, level] = self._assign(level, residual, self.codebooks_[level])
            residual -= self.codebooks_[level][codes[:, level]]
        return codes

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return sum(self.codebooks_[lv][codes[:, lv]] for lv in range(self.n_levels))

    def candidate_last_codes(self, x: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
        last = self.n_levels - 1
        r = self._residual_before(check_vectors(x), codes, last)
        _, d2 = nearest(r, self.codebooks_[last])
        return np.argsort(d2, axis=1, kind="stable")[:, :k]

    def _state(self) -> dict[str, np.ndarray]:
        return {"codebooks": self.codebooks_}

    def _load_state(self, tensors: dict[str, np.ndarray]) -> None:
        self.codebooks_ = tensors["codebooks"]
