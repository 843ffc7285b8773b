"""Comment datasets: Reddit threads (content items with comment trees) and YouTube top comments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.builders import index_ids, items_table
from recsage.datasets.tables import Dataset
from recsage.datasets.tabular import read_table, record_label, require_columns
from recsage.datasets.validation import ValidationReport, check_unique


def _drop_missing(df: pd.DataFrame, cols: list[str], file: str, report: ValidationReport) -> pd.DataFrame:
    bad = np.zeros(len(df), dtype=bool)
    for col in cols:
        miss = df[col].isna().to_numpy() & ~bad
        for pos in np.flatnonzero(miss):
            report.reject(InvalidInputError("missing required value", file=file, record=record_label(df, pos), field=col))
        bad |= miss
    return df.loc[~bad].reset_index(drop=True)


def _dedupe(df: pd.DataFrame, col: str, file: str, report: ValidationReport) -> pd.DataFrame:
    keep = check_unique(df[col].tolist(), [record_label(df, i) for i in range(len(df))], file=file, field=col, report=report)
    return df.loc[keep].reset_index(drop=True)


def load_reddit_comments(path: str | Path, *, report: ValidationReport | None = None, encoding: str = "utf-8") -> Dataset:
    """`threads.csv.gz` + `comments.csv.gz`; a thread is a content item. Internal use only (no licence)."""
    folder = Path(path)
    report = report or ValidationReport()
    tfile, cfile = folder / "threads.csv.gz", folder / "comments.csv.gz"
    threads = read_table(tfile, encoding)
    require_columns(threads, ["thread_id", "title"], file=str(tfile))
    threads = _dedupe(_drop_missing(threads, ["thread_id", "title"], str(tfile), report), "thread_id", str(tfile), report)
    comments = read_table(cfile, encoding)
    require_columns(comments, ["comment_id", "thread_id", "parent_id", "text", "upvotes", "created"], file=str(cfile))
    comments = _dedupe(_drop_missing(comments, ["comment_id", "thread_id", "created"], str(cfile), report), "comment_id", str(cfile), report)
    item_map = index_ids(threads["thread_id"].astype(str), numeric=False)
    known = comments["thread_id"].astype(str).isin(item_map).to_numpy()
    for pos in np.flatnonzero(~known):
        report.reject(InvalidInputError(f"unknown thread {comments['thread_id'].iat[pos]!r}", file=str(cfile), record=record_label(comments, pos), field="thread_id"))
    comments = comments.loc[known].reset_index(drop=True)
    items = items_table(
        [
            {"raw_id": str(t), "title": str(ti), "description": "" if pd.isna(tx) else str(tx), "created": c, "upvotes": u,
             "author": None if pd.isna(a) else str(a)}
            for t, ti, tx, c, u, a in zip(threads["thread_id"], threads["title"], threads["text"], threads["created"], threads["upvotes"],
                                          threads["author"] if "author" in threads else [None] * len(threads))
        ],
        item_map,
    )
    out = pd.DataFrame(
        {
            "comment_id": comments["comment_id"].astype(str),
            "item_id": comments["thread_id"].astype(str).map(item_map).astype(np.int64),
            "user": comments["author"].astype("string"),
            "parent_id": comments["parent_id"].astype("string"),
            "text": comments["text"].fillna("").astype(str),
            "likes": pd.to_numeric(comments["upvotes"]).fillna(0).astype(np.int64),
            "created": pd.to_numeric(comments["created"]).astype(np.int64),
            "depth": pd.to_numeric(comments["depth"]).fillna(0).astype(np.int64),
            "n_direct_replies": pd.to_numeric(comments["n_direct_replies"]).fillna(0).astype(np.int64),
        }
    )
    users, interactions = _commenters(out)
    return Dataset(
        name="reddit-college",
        items=items,
        users=users,
        interactions=interactions,
        comments=out,
        meta={"source": str(folder), "loader": "reddit-comments", "timestamp_kind": "unix",
              "licence": "none stated (Reddit user content): internal research only, never redistribute",
              "validation": report.to_dict()},
    )


def _commenters(comments: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users = known comment authors; an interaction = a user's first comment in a thread (its
    time), so the threads also form a recommendation dataset (which thread will a user join next)."""
    known = comments[comments["user"].notna() & ~comments["user"].isin(["[deleted]", ""])]
    first = known.groupby(["user", "item_id"], sort=False)["created"].min().reset_index()
    user_map = index_ids(first["user"].astype(str).drop_duplicates().sort_values(), numeric=False)
    users = pd.DataFrame({"user_id": np.arange(len(user_map), dtype=np.int64), "raw_id": list(user_map)})
    inter = pd.DataFrame({"user_id": first["user"].astype(str).map(user_map).astype(np.int64), "item_id": first["item_id"].astype(np.int64),
                          "timestamp": first["created"].astype(np.int64), "rating": np.nan})
    return users, inter.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)


def load_youtube_comments(path: str | Path, *, report: ValidationReport | None = None, encoding: str = "utf-8") -> Dataset:
    """`videos-stats.csv` + `comments.csv`. Videos listed under two keywords are kept once
    (first keyword) and their duplicated comment rows are removed; both counts go to `meta`."""
    folder = Path(path)
    report = report or ValidationReport()
    vfile, cfile = folder / "videos-stats.csv", folder / "comments.csv"
    videos = read_table(vfile, encoding)
    require_columns(videos, ["Title", "Video ID", "Keyword"], file=str(vfile))
    videos = _drop_missing(videos, ["Title", "Video ID"], str(vfile), report)
    n_videos_rows = len(videos)
    videos = videos.drop_duplicates("Video ID", keep="first").reset_index(drop=True)
    comments = read_table(cfile, encoding)
    require_columns(comments, ["Video ID", "Comment", "Likes"], file=str(cfile))
    comments = _drop_missing(comments, ["Video ID"], str(cfile), report)
    n_comment_rows = len(comments)
    comments = comments.drop_duplicates(subset=[c for c in comments.columns if c not in ("Unnamed: 0", "__line__")]).reset_index(drop=True)
    item_map = index_ids(videos["Video ID"].astype(str), numeric=False)
    known = comments["Video ID"].astype(str).isin(item_map).to_numpy()
    for pos in np.flatnonzero(~known):
        report.reject(InvalidInputError(f"unknown video {comments['Video ID'].iat[pos]!r}", file=str(cfile), record=record_label(comments, pos), field="Video ID"))
    comments = comments.loc[known].reset_index(drop=True)
    items = items_table(
        [{"raw_id": str(v), "title": str(t), "categories": [str(k)], "views": vw, "likes": lk}
         for v, t, k, vw, lk in zip(videos["Video ID"], videos["Title"], videos["Keyword"], videos.get("Views"), videos.get("Likes"))],
        item_map,
    )
    out = pd.DataFrame(
        {
            "comment_id": [f"c{i}" for i in range(len(comments))],
            "item_id": comments["Video ID"].astype(str).map(item_map).astype(np.int64),
            "user": pd.Series([None] * len(comments), dtype="string"),
            "parent_id": pd.Series([None] * len(comments), dtype="string"),
            "text": comments["Comment"].fillna("").astype(str),
            "likes": pd.to_numeric(comments["Likes"], errors="coerce").fillna(0).astype(np.int64),
            "created": np.zeros(len(comments), dtype=np.int64),
            "sentiment": pd.to_numeric(comments.get("Sentiment"), errors="coerce"),
        }
    )
    return Dataset(
        name="youtube-comments",
        items=items,
        comments=out,
        meta={"source": str(folder), "loader": "youtube-comments", "timestamp_kind": None,
              "duplicate_video_rows_removed": n_videos_rows - len(videos),
              "duplicate_comment_rows_removed": n_comment_rows - len(comments) - int((~known).sum()),
              "validation": report.to_dict()},
    )
