"""User-kNN: the training users whose sequences look most like this history, their items summed.

Item-kNN scores a candidate by how it co-occurs with each history item separately; user-kNN
matches the history as a whole, so it reaches items that only users with the same *combination*
of interests went on to. In the ranking stage it is a second collaborative retriever: on Beauty
it adds candidates the item-kNN and SASRec both miss (`benchmarks/bench_ranking.py`).
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
from recsage.recmodels.base import ScoringRecommender, register_recommender
from recsage.recmodels.itemknn import incidence, popularity_tiebreak, recency_query

FORMAT_VERSION = 1


@dataclass(frozen=True)
class UserKNNConfig(ConfigMixin):
    n_neighbors: int = 200  # training users whose items are summed (the most similar ones)
    recency_decay: float = 0.6  # weight of the history item t steps before the end: decay ** t
    max_history: int = 20  # history items the query looks at (the most recent)


@register_recommender("userknn")
class UserKNNRecommender(ScoringRecommender):
    """Cosine between the recency-weighted history and each training user's item set; the top
    `n_neighbors` users' items, weighted by that similarity, are the scores."""

    def __init__(self, config: UserKNNConfig | None = None) -> None:
        self.config = config or UserKNNConfig()

    def fit(self, train: SequenceSet, valid: QuerySet | None = None) -> UserKNNRecommender:
        self._set_incidence(incidence(train.sequences, train.n_items))
        self.n_items_ = train.n_items
        return self

    def _set_incidence(self, ui: sp.csr_matrix) -> None:
        """The saved matrix and what scoring derives from it once: the users' rows scaled to unit
        norm (cosine) and the items' popularity (the tie-breaker)."""
        self.incidence_ = ui.tocsr().astype(np.float32)
        norm = 1.0 / np.sqrt(np.maximum(np.asarray(self.incidence_.sum(axis=1)).ravel(), 1.0))
        self._user_rows_t = (sp.diags(norm) @ self.incidence_).T.tocsr()
        self._tiebreak = popularity_tiebreak(np.asarray(self.incidence_.sum(axis=0)).ravel())

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        self._check_fitted()
        ui = self.incidence_
        n = len(histories)
        if n == 0 or ui.shape[0] == 0:
            return np.zeros((n, self.n_items_))
        q = recency_query(histories, self.n_items_, self.config.recency_decay, self.config.max_history)
        sim = np.asarray((q @ self._user_rows_t).todense(), dtype=np.float32)  # (n, users); the query's own norm ranks nothing
        k = min(self.config.n_neighbors, sim.shape[1])
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top = sp.csr_matrix((np.take_along_axis(sim, idx, axis=1).ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=sim.shape)
        return np.asarray((top @ ui).todense(), dtype=np.float64) + self._tiebreak

    def save_pretrained(self, directory: str | Path) -> Path:
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sp.save_npz(d / "incidence.npz", self.incidence_.tocsr())
        (d / "config.json").write_text(json.dumps({"class": "userknn", "format_version": FORMAT_VERSION, "n_items": self.n_items_,
                                                   "params": self.config.to_dict()}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> UserKNNRecommender:
        d = Path(directory)
        meta = read_saved_meta(d, "userknn", FORMAT_VERSION)
        obj = cls(UserKNNConfig.from_dict(meta["params"]))
        try:
            ui = sp.load_npz(d / "incidence.npz")
        except (OSError, ValueError, KeyError) as e:
            raise InvalidInputError(f"unreadable user-kNN incidence matrix ({e})", file=str(d / "incidence.npz")) from None
        obj.n_items_ = int(meta["n_items"])
        if ui.shape[1] != obj.n_items_:
            raise InvalidInputError(f"incidence matrix has {ui.shape[1]} items, config.json says {obj.n_items_}", file=str(d / "incidence.npz"))
        obj._set_incidence(ui)
        return obj
