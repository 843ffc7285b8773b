"""Item-to-item nearest neighbours in a vector space (MiniLM text embeddings, collaborative
vectors, …): a retriever that reaches items co-occurrence has never linked (cold, sparse data)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsage.core.config import ConfigMixin, read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.recmodels.base import ScoringRecommender

FORMAT_VERSION = 1


@dataclass(frozen=True)
class EmbeddingKNNConfig(ConfigMixin):
    recency_decay: float = 0.6  # weight of the item t steps before the end: decay ** t
    max_history: int = 20


class EmbeddingKNNRecommender(ScoringRecommender):
    """Score = recency-weighted sum of cosine similarities to the history's items. `fit` only
    checks sizes: the vectors are given (they must not be learnt from test interactions)."""

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
        return self

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        c = self.config
        q = np.zeros((len(histories), self.vectors_.shape[1]), dtype=np.float32)
        for i, h in enumerate(histories):
            h = h[-c.max_history :]
            if len(h):
                w = (c.recency_decay ** np.arange(len(h) - 1, -1, -1)).astype(np.float32)
                q[i] = w @ self.vectors_[h]
        return q @ self.vectors_.T

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_file({"vectors": self.vectors_}, str(d / "vectors.safetensors"))
        (d / "config.json").write_text(json.dumps({"class": "embedding-knn", "format_version": FORMAT_VERSION, "n_items": self.n_items_,
                                                   "params": self.config.to_dict()}))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> EmbeddingKNNRecommender:
        from safetensors.numpy import load_file

        d = Path(directory)
        meta = read_saved_meta(d, "embedding-knn", FORMAT_VERSION)
        try:
            v = load_file(str(d / "vectors.safetensors"))["vectors"]
        except Exception as e:  # safetensors raises its own types on a corrupt header
            raise InvalidInputError(f"unreadable vectors ({e})", file=str(d / "vectors.safetensors")) from None
        obj = cls(v, EmbeddingKNNConfig.from_dict(meta["params"]))
        obj.vectors_, obj.n_items_ = v, int(meta["n_items"])
        return obj
