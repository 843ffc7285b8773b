"""Item-to-item nearest neighbours in a vector space (MiniLM text embeddings, collaborative
vectors, …): a retriever that reaches items co-occurrence has never linked (cold, sparse data).

With `predict_next` the query is not the history's own vector but a prediction of what follows
it: a ridge map, fitted on the training split's transitions, from an item's vector to the
vectors of the items users move to next. Text neighbours answer "more like this"; the mapped
query answers "what people go on to", still for items no one has moved to yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import scipy.sparse as sp

from recsage.core.config import ConfigMixin, read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.recmodels.base import ScoringRecommender
from recsage.recmodels.itemknn import succession_counts

FORMAT_VERSION = 1


@dataclass(frozen=True)
class EmbeddingKNNConfig(ConfigMixin):
    recency_decay: float = 0.6  # weight of the item t steps before the end: decay ** t
    max_history: int = 20
    predict_next: bool = False  # query with the ridge-mapped "next item" vector (fit on training transitions)


def next_item_map(vectors: np.ndarray, transitions: sp.spmatrix) -> np.ndarray:
    """(d, d) ridge map from an item's vector to the vectors of the items that follow it.

    `transitions[i, j]`: how much i → j weighs; rows are expected to sum to about 1, so each
    source item counts once however popular it is. The ridge sits at the mean eigenvalue of the
    source Gram matrix: strong enough that a few thousand transitions do not overfit 384 dims."""
    e = np.asarray(vectors, dtype=np.float64)
    tr = sp.coo_matrix(transitions)
    sw = np.sqrt(tr.data)[:, None]
    x, y = e[tr.row] * sw, e[tr.col] * sw
    xx = x.T @ x
    a = xx + np.eye(e.shape[1]) * max(np.trace(xx) / e.shape[1], 1e-6)
    return np.linalg.solve(a, x.T @ y).astype(np.float32)


def transition_rows(sequences, n_items: int) -> sp.csr_matrix:
    """Row-normalised i → j succession counts of the training sequences."""
    tr = succession_counts(sequences, n_items)
    return (sp.diags(1.0 / np.maximum(np.asarray(tr.sum(axis=1)).ravel(), 1.0)) @ tr).tocsr()


class EmbeddingKNNRecommender(ScoringRecommender):
    """Score = recency-weighted sum of cosine similarities to the history's items (or, with
    `predict_next`, to the mapped next-item query). `fit` checks sizes and, for `predict_next`,
    fits the map on the training transitions: the vectors are given (they must not be learnt
    from test interactions)."""

    def __init__(self, item_vectors: np.ndarray, config: EmbeddingKNNConfig | None = None) -> None:
        self.item_vectors = item_vectors
        self.config = config or EmbeddingKNNConfig()

    def fit(self, train: SequenceSet, valid: QuerySet | None = None) -> EmbeddingKNNRecommender:
        v = np.asarray(self.item_vectors, dtype=np.float32)
        if v.ndim != 2 or len(v) != train.n_items:
            raise InvalidInputError(f"item vectors have shape {v.shape}, the catalogue has {train.n_items} items", field="item_vectors")
        # C order: safetensors writes the raw buffer, and SVD outputs are often Fortran-ordered
        self.vectors_ = np.ascontiguousarray(v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12))
        self.n_items_ = train.n_items
        if self.config.predict_next:
            self.next_map_ = next_item_map(self.vectors_, transition_rows(train.sequences, train.n_items))
        return self

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        c = self.config
        q = np.zeros((len(histories), self.vectors_.shape[1]), dtype=np.float32)
        for i, h in enumerate(histories):
            h = h[-c.max_history :]
            if len(h):
                w = (c.recency_decay ** np.arange(len(h) - 1, -1, -1)).astype(np.float32)
                q[i] = w @ self.vectors_[h]
        if self.config.predict_next:
            q = q @ self.next_map_
        return q @ self.vectors_.T

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays = {"vectors": self.vectors_} | ({"next_map": self.next_map_} if self.config.predict_next else {})
        save_file(arrays, str(d / "vectors.safetensors"))
        (d / "config.json").write_text(json.dumps({"class": "embedding-knn", "format_version": FORMAT_VERSION, "n_items": self.n_items_,
                                                   "params": self.config.to_dict()}))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> EmbeddingKNNRecommender:
        from safetensors.numpy import load_file

        d = Path(directory)
        meta = read_saved_meta(d, "embedding-knn", FORMAT_VERSION)
        try:
            arrays = load_file(str(d / "vectors.safetensors"))
        except Exception as e:  # safetensors raises its own types on a corrupt header
            raise InvalidInputError(f"unreadable vectors ({e})", file=str(d / "vectors.safetensors")) from None
        config = EmbeddingKNNConfig.from_dict(meta["params"])
        for key in ("vectors",) + (("next_map",) if config.predict_next else ()):
            if key not in arrays:
                raise InvalidInputError(f"no {key!r} array", file=str(d / "vectors.safetensors"), field=key)
        v = arrays["vectors"]
        obj = cls(v, config)
        obj.vectors_, obj.n_items_ = v, int(meta["n_items"])
        if config.predict_next:
            obj.next_map_ = arrays["next_map"]
        return obj
