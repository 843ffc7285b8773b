"""EASE (Steck, WWW 2019): a closed-form item-item linear autoencoder.

`B = I - P diag(1/diag(P))` with `P = (XᵀX + λI)⁻¹` over the training sequences' 0/1 item sets, and
zero diagonal; a history is scored as its recency-weighted item vector times B. Unlike cosine
item-kNN it learns how much each co-occurrence *explains* beyond the others (negative weights
included), which is why it is a strong collaborative baseline on sparse Amazon data. The dense
(n_items × n_items) solve bounds it to catalogues of tens of thousands of items; larger ones are
refused before any memory is taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsage.core.config import ConfigMixin, read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.recmodels.base import ScoringRecommender, register_recommender
from recsage.recmodels.itemknn import incidence, recency_query

FORMAT_VERSION = 1


@dataclass(frozen=True)
class EASEConfig(ConfigMixin):
    l2: float = 500.0  # λ: the ridge on the Gram matrix
    max_items: int = 40_000  # a dense float32 n×n weight matrix: 40k items = 6.4 GB
    recency_decay: float = 0.6  # weight of the history item t steps before the end: decay ** t
    max_history: int = 20  # history items the query looks at (the most recent)


@register_recommender("ease")
class EASERecommender(ScoringRecommender):
    def __init__(self, config: EASEConfig | None = None) -> None:
        self.config = config or EASEConfig()

    def fit(self, train: SequenceSet, valid: QuerySet | None = None) -> EASERecommender:
        import torch

        n = train.n_items
        if n > self.config.max_items:
            raise InvalidInputError(f"EASE needs a dense {n}×{n} matrix; this catalogue has more than max_items={self.config.max_items} items "
                                    "(use itemknn or userknn)", field="n_items")
        x = incidence(train.sequences, n)
        gram = torch.from_numpy((x.T @ x).toarray().astype(np.float32))
        gram += self.config.l2 * torch.eye(n)
        p = torch.linalg.inv(gram)
        b = -p / torch.diagonal(p)[None, :]
        b.fill_diagonal_(0.0)
        self.weights_ = b.numpy()
        self.n_items_ = n
        return self

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        self._check_fitted()
        q = recency_query(histories, self.n_items_, self.config.recency_decay, self.config.max_history)
        return np.asarray(q @ self.weights_, dtype=np.float64)

    def save_pretrained(self, directory: str | Path) -> Path:
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "weights.npy", self.weights_)
        (d / "config.json").write_text(json.dumps({"class": "ease", "format_version": FORMAT_VERSION, "n_items": self.n_items_,
                                                   "params": self.config.to_dict()}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> EASERecommender:
        d = Path(directory)
        meta = read_saved_meta(d, "ease", FORMAT_VERSION)
        obj = cls(EASEConfig.from_dict(meta["params"]))
        n = int(meta["n_items"])
        try:
            w = np.load(d / "weights.npy", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"unreadable EASE weights ({e})", file=str(d / "weights.npy")) from None
        if w.shape != (n, n):
            raise InvalidInputError(f"weights have shape {w.shape}, config.json says {n} items", file=str(d / "weights.npy"))
        obj.weights_, obj.n_items_ = w, n
        return obj
