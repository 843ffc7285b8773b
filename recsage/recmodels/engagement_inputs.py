"""From comment-section examples to the engagement model's arrays (IDs, buckets, table indices).

Only what is known at the moment of the user's first comment goes in: counts of comments before
it, the thread's age then, the visible comments' authors, depth and age. Identifiers are indexed
over the training split alone (0 = not seen in training), so test threads and new users look to
the model as they would in production.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsage.datasets.comment_sections import CommentSections
from recsage.recmodels.engagement import EngagementInputs

ID_FIELDS = ["user", "item_author", "is_item_author", "hour", "n_before", "item_age", "user_train_activity"]
SLOT_FIELDS = ["comment_author", "depth", "comment_age", "by_item_author"]
N_BUCKETS = 16


def log_bucket(x: np.ndarray, n: int = N_BUCKETS) -> np.ndarray:
    """1 + floor(log2(1 + x)), clipped to n − 1 (0 stays free for "unknown")."""
    return np.clip(1 + np.floor(np.log2(1 + np.maximum(np.asarray(x, float), 0))), 1, n - 1).astype(np.int64)


def _index(values: pd.Series, vocab: pd.Index) -> np.ndarray:
    """1-based index of each value in vocab, 0 when absent or missing."""
    pos = vocab.get_indexer(values.astype("string").fillna("\x00"))
    return (pos + 1).astype(np.int64)


def engagement_inputs(
    sections: CommentSections,
    *,
    item_text: np.ndarray | None = None,
    comment_text: np.ndarray | None = None,
    comment_labels: np.ndarray | None = None,
) -> EngagementInputs:
    """`item_text` rows follow `sections.items` (by item_id); `comment_text` / `comment_labels`
    rows follow `sections.comments` (the row numbers in `visible`)."""
    ex, com, items = sections.examples, sections.comments, sections.items
    train = ex["split"].to_numpy() == "train"
    users = pd.Index(pd.unique(ex.loc[train, "user"].astype(str)))
    item_author = items.set_index("item_id")["author"] if "author" in items else pd.Series(dtype="string")
    ex_author = ex["item_id"].map(item_author).astype("string")
    train_items = set(ex.loc[train, "item_id"].tolist())
    authors = pd.Index(pd.unique(pd.concat([users.to_series(), item_author[item_author.index.isin(train_items)].dropna().astype(str)])))
    created = items.set_index("item_id")["created"]
    activity = ex.loc[train, "user"].astype(str).value_counts()
    is_author = (ex_author.fillna("\x01").to_numpy() == ex["user"].astype(str).to_numpy()).astype(np.int64)
    id_fields = np.stack([
        _index(ex["user"], users),
        _index(ex_author, authors),
        1 + is_author,
        1 + ex["hour"].to_numpy(np.int64),
        log_bucket(ex["n_before"].to_numpy()),
        log_bucket((ex["first_time"].to_numpy(np.int64) - ex["item_id"].map(created).to_numpy(np.int64)) / 60.0),
        log_bucket(ex["user"].astype(str).map(activity).fillna(0).to_numpy()),
    ], 1)
    id_sizes = [len(users) + 1, len(authors) + 1, 3, 25, N_BUCKETS, N_BUCKETS, N_BUCKETS]

    vis = sections.visible
    mask = vis >= 0
    safe = np.maximum(vis, 0)
    com_author = _index(com["user"], authors)[safe]
    depth = np.clip(com["depth"].to_numpy(np.int64) if "depth" in com else np.zeros(len(com), np.int64), 0, 6)[safe] + 1
    age = log_bucket((ex["first_time"].to_numpy(np.int64)[:, None] - com["created"].to_numpy(np.int64)[safe]) / 60.0)
    by_op = 1 + (com["user"].astype("string").fillna("\x02").to_numpy()[safe] == ex_author.fillna("\x01").to_numpy()[:, None]).astype(np.int64)
    slot_ids = np.stack([com_author, depth, age, by_op], -1) * mask[..., None]
    slot_sizes = [len(authors) + 1, 8, N_BUCKETS, 3]
    return EngagementInputs(
        id_fields=id_fields, id_sizes=id_sizes, slot_ids=slot_ids.astype(np.int64), slot_sizes=slot_sizes, mask=mask,
        item_index=ex["item_id"].to_numpy(np.int64), comment_index=vis, engagement=ex["engagement"].to_numpy(np.float64),
        long=ex["long"].to_numpy(bool), replied=sections.replied, upvotes=sections.upvotes,
        item_text=item_text, comment_text=comment_text, comment_labels=comment_labels, field_names=ID_FIELDS + SLOT_FIELDS,
    )
