"""Most-popular baseline: the floor every model must clear."""

from __future__ import annotations

import numpy as np

from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.recmodels.base import ScoringRecommender, register_recommender


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
