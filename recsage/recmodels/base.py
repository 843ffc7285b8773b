"""The one `Recommender` interface, in user terms, plus helpers every model shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.core.registry import Registry
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.evaluation.metrics import top_k


def validation_sample(valid: QuerySet | None, n: int | None, seed: int) -> QuerySet | None:
    """A fixed seeded sample of `n` validation users (in their original order) for early
    stopping, so each epoch's check is cheap and comparable; all of them when n is None or larger."""
    if valid is None or not n or len(valid) <= n:
        return valid
    return valid.subset(np.sort(np.random.default_rng(seed).choice(len(valid), n, replace=False)))


@runtime_checkable
class Recommender(Protocol):
    def fit(self, train: SequenceSet, valid: QuerySet | None = None) -> Recommender: ...

    def recommend(
        self, histories: Sequence[np.ndarray], k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]: ...


RECOMMENDERS: Registry[type] = Registry("recommender")


def check_histories(histories: Sequence[np.ndarray], n_items: int) -> list[np.ndarray]:
    """Histories as int64 arrays; an id outside the catalogue is an error naming the history."""
    out = []
    for i, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64).reshape(-1)
        if len(h) and (h.min() < 0 or h.max() >= n_items):
            bad = int(h[(h < 0) | (h >= n_items)][0])
            raise InvalidInputError(f"item id {bad} is not in the catalogue (0..{n_items - 1})", record=f"history {i}", field="item_id")
        out.append(h)
    return out


def exclude_history(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Sets each history's own items to -inf in its score row (in place), so they are never ranked."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) if len(histories) else np.empty(0, dtype=np.int64)
    scores[rows, cols] = -np.inf
    return scores


def register_recommender(name: str):
    return RECOMMENDERS.register(name)


class ScoringRecommender(ABC):
    """Base for models that score every item for a history: shared checks, exclusion, top-k."""

    n_items_: int

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def _check_histories(self, histories: Sequence[np.ndarray]) -> list[np.ndarray]:
        return check_histories(histories, self.n_items_)

    @abstractmethod
    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        """(n_histories, n_items) scores, higher is better."""

    def recommend(
        self, histories: Sequence[np.ndarray], k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        hist = self._check_histories(histories)
        scores = self.score(hist).astype(np.float64, copy=False)
        if exclude_seen:
            exclude_history(scores, hist)
        return top_k(scores, k)
