"""Item-level signals as dense arrays indexed by internal item id: what pair features read.

They come from the item feature table (`features build`), so the ranking stage consumes exactly
what downstream users get, and a signal the table does not have is simply absent (None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError

SIGNAL_ARRAYS = ("sid_codes", "text_embedding", "topics", "topic_to_role", "role_to_topic", "reward")


@dataclass
class ItemSignals:
    n_items: int
    popularity: np.ndarray  # training-split interaction counts
    recent_popularity: np.ndarray  # counts among each training sequence's last 3 items
    sid_codes: np.ndarray | None = None  # (n_items, n_levels) int
    text_embedding: np.ndarray | None = None  # (n_items, d) L2-normalised
    topics: np.ndarray | None = None  # (n_items, n_topics) 0/1
    topic_to_role: np.ndarray | None = None  # (n_topics, n_roles), from the role graph
    role_to_topic: np.ndarray | None = None  # (n_roles, n_topics)
    reward: np.ndarray | None = None  # PushGen reward score of the title
    names: dict[str, list[str]] = field(default_factory=dict)  # topic / role names

    def present(self) -> list[str]:
        return [n for n in SIGNAL_ARRAYS if getattr(self, n) is not None]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"popularity": self.popularity, "recent_popularity": self.recent_popularity}
        return out | {n: getattr(self, n) for n in self.present()}

    @classmethod
    def from_arrays(cls, n_items: int, arrays: dict[str, np.ndarray], names: dict[str, list[str]] | None = None) -> ItemSignals:
        return cls(n_items=n_items, names=names or {}, **{k: np.asarray(v) for k, v in arrays.items()})

    @classmethod
    def from_table(cls, items: pd.DataFrame, manifest: dict, *, file: str | Path = "items.parquet") -> ItemSignals:
        """Arrays from an item feature table written by `build_feature_tables`; a missing or
        malformed column that the manifest promises is an error naming it."""
        n = len(items)
        if "item_id" not in items.columns or not np.array_equal(items["item_id"].to_numpy(), np.arange(n)):
            raise InvalidInputError("item table must hold every item once, ordered by item_id 0..n-1", file=str(file), field="item_id")

        def col(name: str) -> np.ndarray:
            if name not in items.columns:
                raise InvalidInputError("column missing (the manifest lists it)", file=str(file), field=name)
            return items[name].to_numpy()

        def vectors(name: str) -> np.ndarray:
            try:
                m = np.stack([np.asarray(v, dtype=np.float32) for v in col(name)])
            except (ValueError, TypeError):
                raise InvalidInputError("rows are not equal-length numeric vectors", file=str(file), field=name) from None
            return m

        def numeric(name: str) -> np.ndarray:
            v = pd.to_numeric(pd.Series(col(name)), errors="coerce").to_numpy(dtype=np.float64)
            if np.isnan(v).any():
                bad = int(np.flatnonzero(np.isnan(v))[0])
                raise InvalidInputError("NaN or non-numeric value", file=str(file), record=f"item_id {bad}", field=name)
            return v

        groups = manifest.get("groups", {})
        out = cls(n_items=n, popularity=numeric("pop_train"), recent_popularity=numeric("pop_train_recent"))
        if "sid" in groups:
            levels = [c for c in groups["sid"]["columns"] if c.startswith("sid_l")]
            out.sid_codes = np.stack([numeric(c) for c in levels], axis=1).astype(np.int64)
        if "text" in groups:
            e = vectors("text_embedding")
            out.text_embedding = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        if "tagcf" in groups:
            out.topics = vectors("topic_multihot")
            g = groups["tagcf"]
            out.names = {"topics": list(g.get("topic_names", [])), "roles": list(g.get("role_names", []))}
            if g.get("topic_to_role") is not None:
                out.topic_to_role = np.asarray(g["topic_to_role"], dtype=np.float32)
                out.role_to_topic = np.asarray(g["role_to_topic"], dtype=np.float32)
        if "reward" in groups:
            out.reward = numeric("reward_title")
        for name in out.present():
            arr = getattr(out, name)
            if name in ("sid_codes", "text_embedding", "topics", "reward") and len(arr) != n:
                raise InvalidInputError(f"{len(arr)} rows for {n} items", file=str(file), field=name)
            if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
                raise InvalidInputError("NaN or infinite values", file=str(file), field=name)
        return out
