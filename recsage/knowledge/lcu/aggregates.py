"""Per-content-item aggregates of the comment labels: what the comment section is like.

These are the LCU columns of the feature tables (share of informative comments, of questions,
mean sentiment, humour, relevance, top topics), computed from the student's label
probabilities over the comments shown in examples, and only from comments created up to a
cutoff (the training split's end), so a point-in-time join never sees a later comment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsage.knowledge.lcu.labels import LabelLayout

COLUMNS = {
    "lcu_comments": ("int64", "comments labelled under the item (up to the cutoff)"),
    "lcu_share_informative": ("float32", "mean P(informative = 2: specific, useful information)"),
    "lcu_share_question": ("float32", "mean P(kind = question)"),
    "lcu_mean_sentiment": ("float32", "mean P(positive) − P(negative)"),
    "lcu_share_humor": ("float32", "mean P(humor)"),
    "lcu_mean_relevance": ("float32", "mean expected relevance to the item, 0..2"),
    "lcu_top_topics": ("list<string>", "the 3 topics with the largest summed probability"),
}


def thread_aggregates(labels: pd.DataFrame, created: pd.Series | np.ndarray, *, cutoff: int | None = None,
                      layout: LabelLayout | None = None) -> pd.DataFrame:
    """`labels`: one row per comment with `item_id` and the layout's probability columns;
    `created`: each row's comment time. Returns one row per item (index item_id)."""
    layout = layout or LabelLayout()
    df = labels.copy()
    df["_created"] = np.asarray(created)
    if cutoff is not None:
        df = df[df["_created"] <= cutoff]
    g = df.groupby("item_id")
    out = pd.DataFrame({
        "lcu_comments": g.size().astype(np.int64),
        "lcu_share_informative": g["informative=2"].mean(),
        "lcu_share_question": g["kind=question"].mean(),
        "lcu_mean_sentiment": (g["sentiment=positive"].mean() - g["sentiment=negative"].mean()),
        "lcu_share_humor": g["humor=true"].mean(),
        "lcu_mean_relevance": g["relevance=1"].mean() + 2 * g["relevance=2"].mean(),
    })
    topic_cols = [f"topic={t}" for t in layout.topics]
    sums = g[topic_cols].sum()
    out["lcu_top_topics"] = [[layout.topics[j] for j in np.argsort(-row)[:3] if row[j] > 0] for row in sums.to_numpy()]
    for c, (t, _) in COLUMNS.items():
        if t == "float32":
            out[c] = out[c].astype(np.float32)
    return out
