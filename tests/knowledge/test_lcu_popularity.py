"""LCU's user-agnostic task alone: ranking a content item's comments by likes (YouTube), on
synthetic lists (unit-test data only) and on real YouTube comments with the real MiniLM."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from recsage.core.errors import InvalidInputError
from recsage.knowledge.lcu.popularity import SURFACE_FEATURES, popularity_lists, relevance_grades, surface_features


def test_surface_features_count_what_a_reader_sees() -> None:
    f = surface_features(["Is this real?? https://x.io", "WOW!", ""])
    col = {n: j for j, n in enumerate(SURFACE_FEATURES)}
    assert f.shape == (3, len(SURFACE_FEATURES))
    assert f[0, col["questions"]] == 2 and f[0, col["has_url"]] == 1 and f[1, col["exclamations"]] == 1
    assert f[1, col["upper_share"]] == 1.0 and f[2, col["chars"]] == 0


def test_lists_group_by_item_and_skip_single_comments() -> None:
    com = pd.DataFrame({"item_id": [0, 0, 1, 2, 2, 2], "likes": [5, 0, 9, 1, 100, 3]})  # synthetic
    lists = popularity_lists(com)
    assert lists.item_ids.tolist() == [0, 2] and [r.tolist() for r in lists.rows] == [[0, 1], [3, 4, 5]]
    rows, sizes = lists.flat()
    assert rows.tolist() == [0, 1, 3, 4, 5] and sizes.tolist() == [2, 3]
    m, mask = lists.matrix(np.arange(6.0))
    assert m.shape == (2, 3) and mask.sum() == 5 and m[1, 2] == 5
    assert relevance_grades(lists.gains).tolist() == [2, 0, 3, 1, 6, 2]  # floor(log2(1 + likes))


def test_bad_likes_are_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="non-numeric"):
        popularity_lists(pd.DataFrame({"item_id": [0, 0], "likes": ["3", "many"]}))
    with pytest.raises(InvalidInputError, match="likes"):
        popularity_lists(pd.DataFrame({"item_id": [0, 0]}))


def test_video_split_is_disjoint_and_summary_aggregates_seeds() -> None:
    from recsage.pipelines.lcu_popularity import popularity_summary, split_indices

    idx = split_indices(100, seed=3)
    assert sorted(np.concatenate(list(idx.values())).tolist()) == list(range(100)) and [len(v) for v in idx.values()] == [70, 15, 15]
    rows = [{"method": "a", "seed": 0, "ndcg@1": 0.5}, {"method": "b", "seed": 0, "ndcg@1": 0.1, "gain_labels": 0.2},
            {"method": "a", "seed": 1, "ndcg@1": 0.7}]
    out = popularity_summary(rows)
    assert [r["method"] for r in out] == ["a", "b"] and out[0]["seeds"] == 2
    assert out[0]["ndcg@1"] == pytest.approx(0.6) and out[0]["ndcg@1_std"] == pytest.approx(0.1) and "gain_labels" not in out[0]
    assert out[1]["gain_labels"] == pytest.approx(0.2)


def test_real_youtube_comments_rank_with_each_feature_group(shared_data, embedder) -> None:
    from recsage.pipelines.lcu_popularity import load_youtube_popularity, popularity_baselines, popularity_features, split_lists, train_popularity_ranker

    ds, lists = load_youtube_popularity(shared_data / "youtube-comment-likes")
    assert len(ds.comments) == 18409 - ds.meta["duplicate_comment_rows_removed"]  # SOURCE.md's count
    assert len(lists) <= ds.n_items and sum(len(r) for r in lists.rows) <= len(ds.comments)
    small = ds.comments[ds.comments["item_id"] < 120].reset_index(drop=True)  # 120 videos keep the real-MiniLM pass short
    ds = replace(ds, comments=small)
    lists = popularity_lists(small)
    data = popularity_features(ds, lists, embed=embedder.embed)
    assert data.blocks["text"][0].shape == (len(small), 385) and "labels" not in data.blocks
    for groups in (("surface",), ("surface", "text")):
        _, m = train_popularity_ranker(data, groups, seed=0)
        assert 0.0 <= m["test"]["ndcg@1"] <= 1.0 and m["test"]["lists"] > 0 and set(m["gain_share"]) == set(groups)
        assert m["fit_lists"] == m["lists"]["train"] + m["lists"]["valid"]  # compact ranker: the valid videos train it too
    base = popularity_baselines(data, split_lists(lists, 0)["test"])
    assert set(base) == {"source order (YouTube's ranking)", "longest first", "random"}
    with pytest.raises(InvalidInputError, match="labels"):
        train_popularity_ranker(data, ("surface", "labels"))
