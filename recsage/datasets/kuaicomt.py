"""KuaiComt (the LCU paper's Kuaishou data) → the same comment-section examples as Reddit.

Written against the documented five-file schema (`shared/data/kuaicomt/SOURCE.md`): the data is
gated (a signed agreement, Chinese institutions only), so nothing of it is here and the tests use
synthetic rows named as such. A user who has the files runs the same LCU pipeline on them.

Mapping: a `user_video_inter` row is an example and its `comment_stay_time` is the engagement
(real, not a proxy). The visible comments are the video's K most shown ones (`show_comment_cnt_td`).
"Replied" means the user liked or replied to the comment (`user_comment_inter`). Upvotes come
from `comment_like_cnt`. The split is by interaction time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.builders import index_ids
from recsage.datasets.comment_sections import CommentSections, SectionConfig, _time_split
from recsage.datasets.tabular import read_table, require_columns

FILES = {
    "user_video_inter.csv": ["user_id", "video_id", "time_ms", "comment_stay_time"],
    "user_comment_inter.csv": ["user_id", "comment_id", "photo_id"],
    "user_features.csv": ["user_id"],
    "video_features.csv": ["video_id", "caption"],
    "comment_features.csv": ["comment_id", "comment_content", "video_id", "comment_like_cnt"],
}


def load_kuaicomt(path: str | Path, config: SectionConfig | None = None) -> CommentSections:
    cfg = config or SectionConfig()
    folder = Path(path)
    missing = [f for f in FILES if not (folder / f).exists()]
    if missing:
        raise InvalidInputError(f"KuaiComt folder is missing {missing} (expected the five files of KuaiComt.zip)", file=str(folder / missing[0]))
    t = {}
    for name, cols in FILES.items():
        t[name] = read_table(folder / name)
        require_columns(t[name], cols, file=str(folder / name))
    videos, comments, inter, cinter = t["video_features.csv"], t["comment_features.csv"], t["user_video_inter.csv"], t["user_comment_inter.csv"]
    report: dict = {}
    vid_map = index_ids(videos["video_id"].astype(str), numeric=False)
    upload = pd.to_datetime(videos["upload_dt"], errors="coerce") if "upload_dt" in videos else pd.Series(pd.NaT, index=videos.index)
    items = pd.DataFrame({
        "item_id": videos["video_id"].astype(str).map(vid_map).astype(np.int64), "raw_id": videos["video_id"].astype(str),
        "title": videos["caption"].fillna("").astype(str), "description": "",
        "categories": [[str(c)] if isinstance(c, str) and c else [] for c in videos.get("category", [None] * len(videos))],
        "author": videos["author_id"].astype("string") if "author_id" in videos else pd.Series([None] * len(videos), dtype="string"),
        "created": (upload.astype("int64") // 10**9).where(upload.notna(), 0).astype(np.int64),
    }).sort_values("item_id").reset_index(drop=True)
    known_c = comments["video_id"].astype(str).isin(vid_map)
    report["comments_of_unknown_videos"] = int((~known_c).sum())
    comments = comments[known_c]
    com = pd.DataFrame({
        "comment_id": comments["comment_id"].astype(str), "item_id": comments["video_id"].astype(str).map(vid_map).astype(np.int64),
        "user": pd.Series([None] * len(comments), dtype="string"), "parent_id": pd.Series([None] * len(comments), dtype="string"),
        "text": comments["comment_content"].fillna("").astype(str), "likes": pd.to_numeric(comments["comment_like_cnt"], errors="coerce").fillna(0).astype(np.int64),
        "created": np.zeros(len(comments), np.int64), "depth": np.zeros(len(comments), np.int64),
        "shown": pd.to_numeric(comments.get("show_comment_cnt_td", 0), errors="coerce").fillna(0).to_numpy(),
    }).sort_values(["item_id", "shown", "comment_id"], ascending=[True, False, True], kind="stable").reset_index(drop=True)
    known_v = inter["video_id"].astype(str).isin(vid_map)
    report["interactions_with_unknown_videos"] = int((~known_v).sum())
    inter = inter[known_v].reset_index(drop=True)
    ex = pd.DataFrame({"user": inter["user_id"].astype(str), "item_id": inter["video_id"].astype(str).map(vid_map).astype(np.int64),
                       "first_time": (pd.to_numeric(inter["time_ms"]) // 1000).astype(np.int64),
                       "engagement": pd.to_numeric(inter["comment_stay_time"], errors="coerce")})
    bad = ex["engagement"].isna().to_numpy()
    report["interactions_without_stay_time"] = int(bad.sum())
    ex = ex[~bad].reset_index(drop=True)
    # the K most shown comments of each video, most shown first
    rank = com.groupby("item_id").cumcount().to_numpy()
    top = com[rank < cfg.k]
    slots = np.full((items["item_id"].max() + 1, cfg.k), -1, np.int64)
    slots[top["item_id"].to_numpy(), rank[rank < cfg.k]] = top.index.to_numpy()
    visible = slots[ex["item_id"].to_numpy()]
    pos = pd.Series(np.arange(len(com)), index=com["comment_id"])
    liked = cinter[cinter["comment_id"].astype(str).isin(pos.index)]
    keys = set(zip(liked["user_id"].astype(str), pos.loc[liked["comment_id"].astype(str)].to_numpy()))
    users = ex["user"].to_numpy()
    replied = np.array([[(users[i], v) in keys for v in row] for i, row in enumerate(visible)], dtype=np.float32) * (visible >= 0)
    upvotes = np.where(visible >= 0, com["likes"].to_numpy(np.float32)[np.maximum(visible, 0)], 0).astype(np.float32)
    ex["n_before"] = (visible >= 0).sum(1)
    ex["n_user_comments"] = replied.sum(1).astype(np.int64)
    ex["span_minutes"] = 0.0
    hm = pd.to_numeric(inter.loc[~bad, "p_hourmin"], errors="coerce").fillna(0).to_numpy() if "p_hourmin" in inter else (ex["first_time"].to_numpy() // 3600) % 24 * 100
    ex["hour"] = (np.asarray(hm, np.int64) // 100) % 24
    ex["split"] = _time_split(ex["first_time"].to_numpy(np.int64), cfg.split_fractions)
    train = ex["split"].to_numpy() == "train"
    threshold = float(np.quantile(ex.loc[train, "engagement"], cfg.long_quantile))
    ex["long"] = ex["engagement"] > threshold
    report["engagement"] = "comment_stay_time as recorded (not a proxy)"
    return CommentSections(ex, visible, replied, upvotes, com.drop(columns=["shown"]), items, threshold, cfg, report)
