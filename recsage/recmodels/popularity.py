"""Most-popular baseline: the floor every model must clear."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recsage.core.config import read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.recmodels.base import ScoringRecommender, register_recommender

FORMAT_VERSION = 1


@register_recommender("popularity")
class PopularityRecommender(ScoringRecommender):
    def fit(self, train: SequenceSet, valid: QuerySet | None = None) -> PopularityRecommender:
        counts = np.zeros(train.n_items, dtype=np.float64)
        if train.sequences:
            np.add.at(counts, np.concatenate(train.sequences), 1.0)
        self.counts_ = counts
        self.n_items_ = train.n_items
        return self

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        return np.tile(self.counts_, (len(histories), 1))

    def save_pretrained(self, directory: str | Path) -> Path:
        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "counts.npy", self.counts_)
        (d / "config.json").write_text(json.dumps({"class": "popularity", "format_version": FORMAT_VERSION, "n_items": self.n_items_}))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> PopularityRecommender:
        d = Path(directory)
        meta = read_saved_meta(d, "popularity", FORMAT_VERSION)
        obj = cls()
        try:
            obj.counts_ = np.load(d / "counts.npy", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"unreadable popularity counts ({e})", file=str(d / "counts.npy")) from None
        obj.n_items_ = int(meta["n_items"])
        return obj
