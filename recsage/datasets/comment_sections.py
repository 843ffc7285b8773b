"""Comment-section engagement examples: one per (user, content item) the user commented under.

This is the data shape LCU trains on. For each pair it records the K comments visible before the
user's first comment there (the K most recent by time, ordered oldest first), which of them the
user replied to (user-specific ranking), their upvotes (user-agnostic ranking), and the user's
engagement with the section.

Reddit records no dwell time, so engagement is a documented **proxy**: minutes between the user's
first and last comment in the thread (capped, default 24 h) plus a per-comment constant (default
1 minute) — the longer and the more a user keeps commenting, the longer they stayed. The
long-engagement label is "above the 70th percentile of the training split", as in LCU's code.
The split is by the content item's creation time (train / valid / test), so test threads are
unseen, as in LCU's date split. Bad rows are counted in `report`, never silently dropped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.tables import Dataset

SPLITS = ("train", "valid", "test")
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class SectionConfig:
    """How examples are built; every field is recorded with the examples."""

    k: int = 6
    per_comment_minutes: float = 1.0
    cap_minutes: float = 24 * 60.0
    long_quantile: float = 0.7
    split_fractions: tuple[float, float] = (0.8, 0.1)  # train, valid; test is the rest
    min_user_threads: int = 1  # keep users who commented in at least this many threads (whole log)
    max_threads: int | None = None  # keep the most recent N threads (None: all) — for quick runs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CommentSections:
    """Examples plus the K visible comments of each, as aligned arrays.

    `visible[i, j]` is a row of `comments` (−1 = no comment in that slot), `replied[i, j]` whether
    the user replied to it, `upvotes[i, j]` its score. `examples` has one row per (user, item):
    `user`, `item_id`, `split`, `first_time`, `n_before`, `n_user_comments`, `span_minutes`,
    `engagement` (the proxy, minutes) and `long` (bool).
    """

    examples: pd.DataFrame
    visible: np.ndarray
    replied: np.ndarray
    upvotes: np.ndarray
    comments: pd.DataFrame
    items: pd.DataFrame
    long_threshold: float
    config: SectionConfig
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.examples)

    def rows(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise InvalidInputError(f"split must be one of {SPLITS}", field="split")
        return np.flatnonzero(self.examples["split"].to_numpy() == split)

    def summary(self) -> dict[str, Any]:
        ex = self.examples
        has_vis = self.visible >= 0
        return {
            "examples": int(len(ex)),
            "per_split": {s: int((ex["split"] == s).sum()) for s in SPLITS},
            "users": int(ex["user"].nunique()),
            "items": int(ex["item_id"].nunique()),
            "comments": int(len(self.comments)),
            "long_threshold_minutes": round(float(self.long_threshold), 3),
            "long_share": round(float(ex["long"].mean()), 4) if len(ex) else 0.0,
            "mean_visible": round(float(has_vis.sum(1).mean()), 3) if len(ex) else 0.0,
            "share_with_replied_visible": round(float((self.replied.sum(1) > 0).mean()), 4) if len(ex) else 0.0,
            "report": self.report,
            "config": self.config.to_dict(),
        }


def _time_split(created: np.ndarray, fractions: tuple[float, float]) -> np.ndarray:
    """'train' / 'valid' / 'test' per item by creation time (ties go to the earlier split)."""
    order = np.argsort(created, kind="stable")
    n = len(created)
    cut1, cut2 = int(round(n * fractions[0])), int(round(n * (fractions[0] + fractions[1])))
    out = np.empty(n, dtype=object)
    out[order[:cut1]], out[order[cut1:cut2]], out[order[cut2:]] = "train", "valid", "test"
    return out


def build_comment_sections(dataset: Dataset, config: SectionConfig | None = None) -> CommentSections:
    """Examples from a dataset with `items` (content, `created`) and `comments` (user, parent, time).

    Counted, not dropped silently: items with no comments, comments by deleted / unknown authors
    (kept as visible comments, never as example users), replies whose parent is missing (treated as
    top-level), empty texts, texts cut at 2,000 characters, users under `min_user_threads`.
    """
    cfg = config or SectionConfig()
    if dataset.comments is None or dataset.items is None:
        raise InvalidInputError(f"dataset {dataset.name!r} has no comments table: load it with the reddit or kuaicomt loader", field="comments")
    if cfg.k < 1:
        raise InvalidInputError("k must be at least 1", field="k")
    items = dataset.items
    if "created" not in items:
        raise InvalidInputError("items need a 'created' time to split by time", field="created")
    com = dataset.comments.copy()
    report: dict[str, Any] = {}
    report["items_without_comments"] = int((~items["item_id"].isin(com["item_id"])).sum())
    if cfg.max_threads is not None:
        keep_items = items.sort_values("created", kind="stable")["item_id"].to_numpy()[-cfg.max_threads:]
        com = com[com["item_id"].isin(keep_items)]
        items = items[items["item_id"].isin(keep_items)]  # the time split is over the kept items
        report["threads_kept_most_recent"] = int(cfg.max_threads)
    text = com["text"].fillna("").astype(str)
    report["empty_texts"] = int((text.str.strip() == "").sum())
    report["texts_cut_at_2000_chars"] = int((text.str.len() > MAX_TEXT_CHARS).sum())
    com["text"] = text.str.slice(0, MAX_TEXT_CHARS)
    com = com.sort_values(["item_id", "created", "comment_id"], kind="stable").reset_index(drop=True)
    pos_of = pd.Series(np.arange(len(com)), index=com["comment_id"].astype(str))
    parent = com["parent_id"].astype("string")
    has_parent = parent.notna().to_numpy()
    parent_pos = parent.map(pos_of).to_numpy(dtype=float, na_value=np.nan)
    missing = has_parent & np.isnan(parent_pos)
    report["replies_to_missing_parent"] = int(missing.sum())
    com["parent_pos"] = np.where(np.isnan(parent_pos), -1, parent_pos).astype(np.int64)
    user = com["user"].astype("string")
    known = user.notna().to_numpy() & ~user.fillna("").isin(["[deleted]", ""]).to_numpy()
    report["comments_by_deleted_authors"] = int((~known).sum())

    acts = com.loc[known, ["item_id", "user", "created", "parent_pos"]].copy()
    acts["pos"] = np.flatnonzero(known)
    if cfg.min_user_threads > 1:
        n_threads = acts.groupby("user")["item_id"].nunique()
        keep_users = n_threads.index[n_threads >= cfg.min_user_threads]
        report["users_below_min_threads"] = int((n_threads < cfg.min_user_threads).sum())
        acts = acts[acts["user"].isin(keep_users)]
    grp = acts.groupby(["user", "item_id"], sort=False)
    ex = grp.agg(first_time=("created", "min"), last_time=("created", "max"), n_user_comments=("created", "size"),
                 first_pos=("pos", "min")).reset_index()
    if not len(ex):
        raise InvalidInputError(f"dataset {dataset.name!r}: no (user, item) pair has a known comment author", field="user")
    # comments of the item before the user's first one: a contiguous run of the sorted table
    item_start = com.groupby("item_id", sort=False)["created"].apply(lambda s: s.index.min())
    start = ex["item_id"].map(item_start).to_numpy(np.int64)
    created = com["created"].to_numpy(np.int64)
    item_codes = com["item_id"].to_numpy(np.int64)
    # first comment strictly before the user's first time (ties at the same second are not "before")
    before_end = np.searchsorted(item_codes * (created.max() + 1) + created,
                                 ex["item_id"].to_numpy(np.int64) * (created.max() + 1) + ex["first_time"].to_numpy(np.int64), side="left")
    ex["n_before"] = before_end - start
    slots = before_end[:, None] - cfg.k + np.arange(cfg.k)[None, :]
    visible = np.where(slots >= start[:, None], slots, -1)
    # which visible comments the user replied to (at any time in that thread)
    pair_index = pd.Series(np.arange(len(ex)), index=pd.MultiIndex.from_frame(ex[["user", "item_id"]]))
    replies = acts[acts["parent_pos"] >= 0]
    rep_pair = pair_index.reindex(pd.MultiIndex.from_frame(replies[["user", "item_id"]])).to_numpy(np.int64)
    n_com = len(com) + 1
    replied_keys = rep_pair * n_com + replies["parent_pos"].to_numpy(np.int64)
    vis_keys = np.arange(len(ex))[:, None] * n_com + visible
    replied = (np.isin(vis_keys, replied_keys) & (visible >= 0)).astype(np.float32)
    upv = com["likes"].to_numpy(np.float32)
    upvotes = np.where(visible >= 0, upv[np.maximum(visible, 0)], 0.0).astype(np.float32)

    span = np.minimum((ex["last_time"] - ex["first_time"]).to_numpy(np.float64) / 60.0, cfg.cap_minutes)
    ex["span_minutes"] = span
    ex["engagement"] = span + cfg.per_comment_minutes * ex["n_user_comments"].to_numpy(np.float64)
    item_created = items.set_index("item_id")["created"]
    split_of_item = pd.Series(_time_split(item_created.to_numpy(np.int64), cfg.split_fractions), index=item_created.index)
    ex["split"] = ex["item_id"].map(split_of_item).to_numpy()
    train = ex["split"].to_numpy() == "train"
    if not train.any():
        raise InvalidInputError("no training examples after the time split", field="split")
    threshold = float(np.quantile(ex.loc[train, "engagement"], cfg.long_quantile))
    ex["long"] = ex["engagement"] > threshold
    ex["hour"] = ((ex["first_time"] // 3600) % 24).astype(np.int64)
    order = np.lexsort((ex["user"].astype(str).to_numpy(), ex["item_id"].to_numpy(), ex["first_time"].to_numpy()))
    ex = ex.iloc[order].reset_index(drop=True)
    return CommentSections(
        examples=ex.drop(columns=["last_time"]), visible=visible[order], replied=replied[order], upvotes=upvotes[order],
        comments=com, items=items, long_threshold=threshold, config=cfg, report=report,
    )
