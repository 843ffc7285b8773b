"""Turn validated raw rows into canonical tables (id remapping, ordering, reference checks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.validation import ValidationReport


@dataclass(frozen=True)
class RawInteraction:
    user: str
    item: str
    timestamp: int
    rating: float | None
    record: int | str  # where it came from, for error messages
    split: str | None = None  # the source's own train/valid/test label, when it has one (generic --mapping split=COL)


def index_ids(raw_ids: Iterable[str], numeric: bool = True) -> dict[str, int]:
    """Contiguous ids in a stable order: numeric order when ids are integers, else sorted text."""
    uniq = set(raw_ids)
    if numeric and all(s.lstrip("-").isdigit() for s in uniq):
        ordered = sorted(uniq, key=int)
    else:
        ordered = sorted(uniq)
    return {r: i for i, r in enumerate(ordered)}


def items_table(rows: Sequence[dict], id_map: dict[str, int]) -> pd.DataFrame:
    """Rows carry raw_id, title, description, brand, categories (list[str]); sorted by new id."""
    df = pd.DataFrame(rows)
    for col, default in (("title", ""), ("description", ""), ("brand", "")):
        if col not in df:
            df[col] = default
        df[col] = df[col].fillna(default).astype(str)
    if "categories" not in df:
        df["categories"] = [[] for _ in range(len(df))]
    df["item_id"] = df["raw_id"].map(id_map).astype("int64")
    df = df.sort_values("item_id", kind="stable").reset_index(drop=True)
    front = ["item_id", "raw_id", "title", "description", "brand", "categories"]
    return df[front + [c for c in df.columns if c not in front]]


def interactions_table(
    rows: Sequence[RawInteraction],
    *,
    item_ids: dict[str, int],
    user_ids: dict[str, int],
    file: str,
    report: ValidationReport,
    ordered: bool,
) -> pd.DataFrame:
    """Checks references and time order, then stores rows grouped by user in time order.

    `ordered=True` means the source lists each user's rows in sequence order already, so a
    timestamp that goes backwards is an error in the source, not something to silently re-sort.
    """
    users, items, times, ratings, splits = [], [], [], [], []
    last_time: dict[str, tuple[int, int | str]] = {}
    for r in rows:
        if r.item not in item_ids:
            report.reject(InvalidInputError(f"unknown item {r.item!r}", file=file, record=r.record, field="item"))
            continue
        if r.user not in user_ids:
            report.reject(InvalidInputError(f"unknown user {r.user!r}", file=file, record=r.record, field="user"))
            continue
        if ordered and r.user in last_time and r.timestamp < last_time[r.user][0]:
            prev_t, prev_rec = last_time[r.user]
            report.reject(
                InvalidInputError(
                    f"non-monotonic timestamp {r.timestamp} < {prev_t} (previous row of user {r.user!r} at record {prev_rec})",
                    file=file,
                    record=r.record,
                    field="timestamp",
                )
            )
            continue
        last_time[r.user] = (r.timestamp, r.record)
        users.append(user_ids[r.user])
        items.append(item_ids[r.item])
        times.append(r.timestamp)
        ratings.append(np.nan if r.rating is None else r.rating)
        splits.append(r.split)
    df = pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype=np.int64),
            "item_id": np.asarray(items, dtype=np.int64),
            "timestamp": np.asarray(times, dtype=np.int64),
            "rating": np.asarray(ratings, dtype=np.float64),
        }
    )
    if any(x is not None for x in splits):
        df["split"] = splits
    # stable sort keeps file order among equal timestamps
    return df.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def users_table(id_map: dict[str, int], attributes: dict[str, dict] | None = None) -> pd.DataFrame:
    raw = sorted(id_map, key=id_map.__getitem__)
    df = pd.DataFrame({"user_id": np.arange(len(raw), dtype=np.int64), "raw_id": raw})
    if attributes:
        attr = pd.DataFrame([{"raw_id": k, **v} for k, v in attributes.items()])
        df = df.merge(attr, on="raw_id", how="left")
    return df
