"""Item-kNN on co-occurrence: an honest, strong baseline for next-item prediction.

Two items are similar when the same users consume them (cosine over the user-item incidence
matrix), plus an optional directed "next item" transition term, which matters for sequential
data. A history is scored as a recency-weighted sum of its items' neighbour rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recsage.core.config import read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.recmodels.base import ScoringRecommender, register_recommender


FORMAT_VERSION = 1


@dataclass(frozen=True)
class ItemKNNConfig:
    n_neighbors: int = 200
    shrink: float = 10.0
    transition_weight: float = 1.0  # weight of direct i -> j successions vs. plain co-occurrence
    recency_decay: float = 0.6  # weight of the item t steps before the end: decay ** t
    max_history: int = 20

    def to_dict(self) -> dict:
        return asdict(self)


@register_recommender("itemknn")
class ItemKNNRecommender(ScoringRecommender):
    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        self.config = config or ItemKNNConfig()

    def fit(self, train: SequenceSet, valid: QuerySet | None = None) -> ItemKNNRecommender:
        c = self.config
        n = train.n_items
        ui = incidence(train.sequences, n)
        co = (ui.T @ ui).tocsr().astype(np.float64)
        co.setdiag(0)
        co.eliminate_zeros()
        norms = np.sqrt(np.asarray(ui.sum(axis=0)).ravel())
        co = co.tocoo()
        sim = co.data / (norms[co.row] * norms[co.col] + c.shrink)
        sim_m = sp.csr_matrix((sim, (co.row, co.col)), shape=(n, n))
        tr = succession_counts(train.sequences, n)
        out_deg = np.asarray(tr.sum(axis=1)).ravel()
        tr = (sp.diags(1.0 / (out_deg + c.shrink)) @ tr).tocsr()
        # the two parts stay available on their own: the ranking stage uses them as separate features
        self.cosine_, self.transition_ = sim_m.tocsr(), tr
        if c.transition_weight > 0:
            sim_m = sim_m + c.transition_weight * tr
        self.similarity_ = _keep_top_per_row(sim_m.tocsr(), c.n_neighbors)
        self.popularity_ = np.asarray(ui.sum(axis=0)).ravel()
        self.n_items_ = n
        return self

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        if not histories:
            return np.zeros((0, self.n_items_))
        q = recency_query(histories, self.n_items_, self.config.recency_decay, self.config.max_history)
        scores = np.asarray((q @ self.similarity_).todense())
        scores += popularity_tiebreak(self.popularity_)
        return scores


    # ---- persistence: config.json + sparse matrices in NumPy's npz format (loaded without pickle) ----
    def save_pretrained(self, directory: str | Path) -> Path:
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for name in ("similarity", "cosine", "transition"):
            sp.save_npz(d / f"{name}.npz", getattr(self, f"{name}_"))
        np.save(d / "popularity.npy", self.popularity_)
        (d / "config.json").write_text(json.dumps({"class": "itemknn", "format_version": FORMAT_VERSION, "n_items": self.n_items_,
                                                   "params": self.config.to_dict()}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ItemKNNRecommender:
        d = Path(directory)
        meta = read_saved_meta(d, "itemknn", FORMAT_VERSION)
        obj = cls(ItemKNNConfig(**{k: v for k, v in meta["params"].items() if k in ItemKNNConfig.__dataclass_fields__}))
        try:
            for name in ("similarity", "cosine", "transition"):
                setattr(obj, f"{name}_", sp.load_npz(d / f"{name}.npz").tocsr())
            obj.popularity_ = np.load(d / "popularity.npy", allow_pickle=False)
        except (OSError, ValueError, KeyError) as e:
            raise InvalidInputError(f"unreadable item-kNN matrices ({e})", file=str(d)) from None
        obj.n_items_ = int(meta["n_items"])
        return obj


def popularity_tiebreak(popularity: np.ndarray) -> np.ndarray:
    """Popularity scaled to at most 1e-9, added to scores as a tie-breaker, so that empty or
    unknown-neighbourhood histories still rank."""
    return 1e-9 * popularity / max(float(popularity.max(initial=0.0)), 1.0)


def incidence(sequences, n_items: int) -> sp.csr_matrix:
    """(n_sequences, n_items) 0/1: which items each training sequence holds (repeats count once)."""
    rows = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    cols = np.concatenate(sequences) if len(sequences) else np.empty(0, dtype=np.int64)
    ui = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(sequences), n_items))
    ui.data[:] = 1.0
    return ui


def succession_counts(sequences, n_items: int) -> sp.csr_matrix:
    """(n_items, n_items) how often item j directly follows item i in the sequences."""
    src = np.concatenate([s[:-1] for s in sequences if len(s) > 1] or [np.empty(0, dtype=np.int64)])
    dst = np.concatenate([s[1:] for s in sequences if len(s) > 1] or [np.empty(0, dtype=np.int64)])
    tr = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n_items, n_items))
    tr.sum_duplicates()
    return tr


def recency_query(histories, n_items: int, decay: float, max_history: int) -> sp.csr_matrix:
    """(n_histories, n_items) sparse weights: the item t steps before the end of the last
    `max_history` weighs decay ** t (repeats add up)."""
    rows, cols, vals = [], [], []
    for i, h in enumerate(histories):
        h = h[-max_history:]
        rows.append(np.full(len(h), i))
        cols.append(h)
        vals.append(decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64))
    if not rows:
        return sp.csr_matrix((len(histories), n_items))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(histories), n_items))


def _keep_top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    m.sort_indices()
    indptr, indices, data = m.indptr, m.indices, m.data
    new_i, new_d, new_p = [], [], [0]
    for r in range(m.shape[0]):
        lo, hi = indptr[r], indptr[r + 1]
        d = data[lo:hi]
        if hi - lo > k:
            keep = np.argpartition(-d, k - 1)[:k]
            new_i.append(indices[lo:hi][keep])
            new_d.append(d[keep])
        else:
            new_i.append(indices[lo:hi])
            new_d.append(d)
        new_p.append(new_p[-1] + len(new_d[-1]))
    return sp.csr_matrix((np.concatenate(new_d), np.concatenate(new_i), np.asarray(new_p)), shape=m.shape)
