"""Comment-section examples: synthetic threads (named as such) for the exact rules, the real Reddit
threads for counts against SOURCE.md, and KuaiComt's documented schema on synthetic rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsage.core.errors import InvalidInputError
from recsage.datasets.comment_sections import SectionConfig, build_comment_sections
from recsage.datasets.tables import Dataset


def synthetic_threads() -> Dataset:
    """Two synthetic threads (not real data): t0 with a reply tree, t1 created later."""
    items = pd.DataFrame({"item_id": [0, 1, 2], "raw_id": ["t0", "t1", "t2"], "title": ["Essay help", "SAT retake?", "empty thread"],
                          "description": ["", "", ""], "created": [1000, 50_000, 90_000], "author": ["op", "op2", None]})
    rows = [  # comment_id, item, user, parent, created, likes, depth
        ("c1", 0, "ann", None, 1100, 10, 0), ("c2", 0, "bob", "c1", 1200, 3, 1), ("c3", 0, None, None, 1300, 7, 0),
        ("c4", 0, "cat", "c1", 1400, 1, 1), ("c5", 0, "cat", "c2", 1400 + 600, 2, 2), ("c6", 0, "ann", "gone", 1500, 1, 1),
        ("d1", 1, "bob", None, 50_100, 5, 0), ("d2", 1, "ann", "d1", 50_200, 2, 1),
    ]
    com = pd.DataFrame(rows, columns=["comment_id", "item_id", "user", "parent_id", "created", "likes", "depth"])
    com["text"] = ["good point", "thanks", "[deleted]", "I agree", "also this", "late", "retake it", ""]
    com["user"] = com["user"].astype("string")
    com["parent_id"] = com["parent_id"].astype("string")
    return Dataset(name="synthetic-threads", items=items, comments=com)


def test_examples_follow_the_rules_on_synthetic_threads() -> None:
    s = build_comment_sections(synthetic_threads(), SectionConfig(k=3, split_fractions=(0.34, 0.33)))
    ex = s.examples.set_index(["user", "item_id"])
    assert len(s) == 5 and "None" not in ex.index.get_level_values(0)  # the deleted author is never an example user
    cat = s.examples.index[(s.examples["user"] == "cat") & (s.examples["item_id"] == 0)][0]
    shown = s.comments["comment_id"].to_numpy()[s.visible[cat][s.visible[cat] >= 0]]
    assert list(shown) == ["c1", "c2", "c3"]  # the K most recent before cat's first comment, oldest first
    assert list(s.replied[cat]) == [1.0, 1.0, 0.0]  # cat replied to c1 and (later) to c2
    assert list(s.upvotes[cat]) == [10.0, 3.0, 7.0]
    assert ex.loc[("cat", 0), "n_user_comments"] == 2 and ex.loc[("cat", 0), "engagement"] == pytest.approx(10 + 2)
    ann = s.examples.index[(s.examples["user"] == "ann") & (s.examples["item_id"] == 0)][0]
    assert (s.visible[ann] == -1).all() and s.examples.loc[ann, "n_before"] == 0  # first commenter saw nothing
    assert s.report["replies_to_missing_parent"] == 1 and s.report["comments_by_deleted_authors"] == 1
    assert s.report["items_without_comments"] == 1 and s.report["empty_texts"] == 1
    assert set(s.examples["split"]) <= {"train", "valid", "test"}
    assert s.long_threshold == pytest.approx(np.quantile(s.examples.loc[s.examples["split"] == "train", "engagement"], 0.7))


def test_no_comments_table_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="no comments table"):
        build_comment_sections(Dataset(name="x", items=synthetic_threads().items))


def test_real_reddit_threads_match_source_counts(shared_data) -> None:
    from recsage.pipelines.lcu import load_sections

    s = load_sections(shared_data / "reddit-college-comments")
    summary = s.summary()
    assert summary["comments"] == 223_144 and len(s.items) == 15_815  # SOURCE.md
    assert summary["examples"] == 145_053  # (user, thread) pairs where the user commented
    assert s.report["comments_by_deleted_authors"] == 13_593 and s.report["items_without_comments"] == 15_815 - 14_686
    vis = s.visible[s.visible >= 0]
    first = s.examples["first_time"].to_numpy()
    rows = np.flatnonzero((s.visible >= 0).any(1))[:2000]
    for i in rows:  # every visible comment is older than the user's first comment, in the same thread
        v = s.visible[i][s.visible[i] >= 0]
        assert (s.comments["created"].to_numpy()[v] < first[i]).all()
        assert (s.comments["item_id"].to_numpy()[v] == s.examples["item_id"].iat[i]).all()
    assert vis.max() < len(s.comments)
    # the split is by thread time: every test thread is newer than every training thread
    created = s.items.set_index("item_id")["created"]
    tr = created.loc[s.examples.loc[s.examples["split"] == "train", "item_id"]].max()
    te = created.loc[s.examples.loc[s.examples["split"] == "test", "item_id"]].min()
    assert tr <= te


def write_synthetic_kuaicomt(folder) -> None:
    """Synthetic rows in KuaiComt's documented five-file schema (not real data)."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"user_id": [1, 1, 2, 3, 2], "video_id": [10, 11, 10, 11, 11], "p_hourmin": [930, 1015, 2200, 800, 1200],
                  "time_ms": [1_700_000_000_000 + i * 3_600_000 for i in range(5)], "is_click": 1, "is_comment": [1, 0, 1, 0, 1],
                  "comment_stay_time": [12.5, 0.0, 40.0, 3.0, 7.0]}).to_csv(folder / "user_video_inter.csv", index=False)
    pd.DataFrame({"user_id": [1, 2, 2], "comment_id": [100, 101, 103], "time_stamp": [1, 2, 3], "photo_id": [10, 10, 11],
                  "is_like": [1, 0, 1], "is_reply": [0, 1, 0]}).to_csv(folder / "user_comment_inter.csv", index=False)
    pd.DataFrame({"user_id": [1, 2, 3], "user_active_degree": ["high", "low", "mid"]}).to_csv(folder / "user_features.csv", index=False)
    pd.DataFrame({"video_id": [10, 11], "author_id": [7, 8], "video_type": "NORMAL", "upload_dt": ["2023-10-01", "2023-10-02"],
                  "caption": ["synthetic caption a", "synthetic caption b"], "duration": [30, 60], "category": ["c1", "c2"]}).to_csv(folder / "video_features.csv", index=False)
    pd.DataFrame({"comment_id": [100, 101, 102, 103], "comment_content": ["nice", "lol", "meh", "wow"], "video_id": [10, 10, 10, 11],
                  "comment_like_cnt": [5, 9, 1, 4], "comment_reply_out": [0, 1, 0, 0], "show_comment_cnt_td": [50, 80, 10, 20]}).to_csv(folder / "comment_features.csv", index=False)


def test_kuaicomt_loader_on_synthetic_rows(tmp_path) -> None:
    from recsage.datasets.kuaicomt import load_kuaicomt

    write_synthetic_kuaicomt(tmp_path / "kc")
    s = load_kuaicomt(tmp_path / "kc", SectionConfig(k=2, split_fractions=(0.6, 0.2)))
    assert len(s) == 5 and list(s.examples["engagement"]) == [12.5, 0.0, 40.0, 3.0, 7.0]
    first = s.examples.index[s.examples["user"] == "1"][0]
    assert list(s.comments["comment_id"].to_numpy()[s.visible[first]]) == ["101", "100"]  # most shown first
    assert list(s.replied[first]) == [0.0, 1.0] and list(s.upvotes[first]) == [9.0, 5.0]
    assert list(s.examples["hour"]) == [9, 10, 22, 8, 12]


def test_kuaicomt_missing_file_is_named(tmp_path) -> None:
    from recsage.datasets.kuaicomt import load_kuaicomt

    write_synthetic_kuaicomt(tmp_path / "kc")
    (tmp_path / "kc" / "comment_features.csv").unlink()
    with pytest.raises(InvalidInputError, match="comment_features.csv"):
        load_kuaicomt(tmp_path / "kc")
