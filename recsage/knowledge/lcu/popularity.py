"""LCU's user-agnostic task on its own: which comments under a content item are popular.

YouTube's comment data has no users, reply trees or times, only each video's top comments with
their likes — exactly the user-agnostic ranking task (LCU's aux 2) and nothing else. This module
turns such comments into ranking lists (one per item) and into the features a ranker reads; the
ranker itself is the ranking stage's `LambdaRanker` (LightGBM LambdaRank), so a list here is a
query and a comment a candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError

SURFACE_FEATURES = ("chars", "words", "questions", "exclamations", "has_url", "upper_share", "non_ascii_share", "lines")
_URL = re.compile(r"https?://|www\.", re.I)


def surface_features(texts: list[str] | pd.Series) -> np.ndarray:
    """(n, len(SURFACE_FEATURES)) counts any reader sees without understanding the text: length,
    punctuation, links, shouting, emoji/non-Latin share. The no-LLM baseline's features."""
    rows = []
    for t in texts:
        t = str(t)
        letters = [c for c in t if c.isalpha()]
        rows.append([len(t), len(t.split()), t.count("?"), t.count("!"), float(bool(_URL.search(t))),
                     sum(c.isupper() for c in letters) / max(len(letters), 1), sum(ord(c) > 127 for c in t) / max(len(t), 1), t.count("\n") + 1])
    return np.asarray(rows, np.float32).reshape(-1, len(SURFACE_FEATURES))


@dataclass
class PopularityLists:
    """Comments grouped by item. `rows[i]` are comment-table rows of list i (in the source's
    order); `gains` = log(1 + likes) per comment row, the graded relevance the metrics use."""

    item_ids: np.ndarray
    rows: list[np.ndarray]
    gains: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, lists: np.ndarray) -> PopularityLists:
        return PopularityLists(self.item_ids[lists], [self.rows[i] for i in lists], self.gains)

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Concatenated comment rows and the group sizes (LightGBM's `group`)."""
        return (np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)), np.array([len(r) for r in self.rows], np.int64)

    def matrix(self, per_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A per-comment-row value as a padded (lists, max_len) matrix and its mask, for
        `list_ranking_metrics`."""
        width = max((len(r) for r in self.rows), default=1)
        out, mask = np.zeros((len(self.rows), width), np.float64), np.zeros((len(self.rows), width), bool)
        for i, r in enumerate(self.rows):
            out[i, : len(r)], mask[i, : len(r)] = per_row[r], True
        return out, mask


def popularity_lists(comments: pd.DataFrame, *, likes: str = "likes") -> PopularityLists:
    """One list per item with at least two comments (a single comment has nothing to rank; those
    are counted by the caller as `len(items) - len(lists)`)."""
    for col in ("item_id", likes):
        if col not in comments.columns:
            raise InvalidInputError(f"comments have no {col!r} column", field=col)
    value = pd.to_numeric(comments[likes], errors="coerce")
    if value.isna().any():
        raise InvalidInputError(f"{int(value.isna().sum())} comments have a non-numeric {likes!r}", field=likes,
                                record=str(int(np.flatnonzero(value.isna().to_numpy())[0])))
    gains = np.log1p(np.maximum(value.to_numpy(np.float64), 0.0))
    groups = comments.groupby("item_id", sort=True).indices
    items = np.array([i for i, r in groups.items() if len(r) >= 2], np.int64)
    return PopularityLists(items, [np.asarray(groups[i], np.int64) for i in items], gains)


def relevance_grades(gains: np.ndarray) -> np.ndarray:
    """Integer relevance for LambdaRank: log2(1 + likes), floored (0 … 30, LightGBM's label-gain table)."""
    return np.clip(np.floor(np.log2(np.expm1(gains) + 1)), 0, 30).astype(np.int32)
