"""Every loader on the real files; counts are the ones verified in each SOURCE.md."""

import numpy as np
import pytest

from recsage.datasets import Dataset, load_dataset


@pytest.fixture(scope="module")
def beauty(shared_data):
    return load_dataset("beauty", shared_data / "amazon-beauty")


def test_beauty_counts_and_index(beauty):
    assert beauty.n_users == 22363
    assert beauty.n_items == 12101
    assert len(beauty.interactions) == 198502
    lengths = beauty.interactions.groupby("user_id").size()
    assert lengths.min() == 5 and lengths.max() == 204
    idx = beauty.sid_indexes["published"]
    assert len(idx) == 12101
    sids = {tuple(s) for s in idx["sid"]}
    assert len(sids) == 12088  # 11 SIDs shared by 24 items (SOURCE.md)
    assert beauty.meta["timestamp_kind"] == "order"
    assert not beauty.meta["has_item_text"]


def test_beauty_sequence_order_is_preserved(beauty, shared_data):
    import json

    raw = json.loads((shared_data / "amazon-beauty" / "Beauty.inter.json").read_text())
    seqs = beauty.sequences()
    # raw ids are 0..n-1 contiguous, so they map to themselves
    for u in ("0", "1", "2", "22362"):
        assert seqs[int(u)].tolist() == raw[u]


def test_scientific_counts_text_and_ten_indexes(shared_data):
    ds = load_dataset("scientific", shared_data / "amazon-scientific")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (8317, 4344, 58492)
    assert (ds.items["title"].str.len() > 0).all()
    assert (ds.items["description"] == "").sum() == 123
    assert (ds.items["brand"] == "").sum() == 12
    assert (ds.items["categories"].map(len) == 0).sum() == 131
    assert len(ds.sid_indexes) == 10
    distinct = {k: len({tuple(s) for s in v["sid"]}) for k, v in ds.sid_indexes.items()}
    assert distinct["letter_native"] == 4317
    assert distinct["rqvae_native"] == 3790
    assert distinct["rkmeans_native"] == 3469
    assert distinct["quasid_native"] == 4222
    for k in ("letter_zcr", "rqvae_zcr", "rkmeans_zcr", "quasid_zcr", "rkmeans_zcr_cf", "mql4grec"):
        assert distinct[k] == 4344


def test_movielens_100k(shared_data):
    ds = load_dataset("movielens-100k", shared_data / "movielens-100k")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100000)
    assert ds.users["occupation"].nunique() == 21
    assert ds.users["occupation"].value_counts()["student"] == 196
    assert (ds.users["gender"] == "M").sum() == 670
    counts = ds.interactions["rating"].value_counts().to_dict()
    assert counts == {4.0: 34174, 3.0: 27145, 5.0: 21201, 2.0: 11370, 1.0: 6110}
    assert ds.interactions.groupby("user_id").size().min() == 20
    assert len(ds.meta["genres"]) == 19
    # Latin-1 titles decoded, genres as categories
    assert ds.items.loc[0, "title"] == "Toy Story (1995)"
    assert ds.items.loc[0, "categories"] == ["Animation", "Children's", "Comedy"]
    # chronological within each user
    assert (ds.interactions.groupby("user_id")["timestamp"].diff().dropna() >= 0).all()


def test_movielens_1m_users_and_movies(shared_data):
    ds = load_dataset("movielens-1m", shared_data / "movielens-1m")
    assert ds.n_users == 6040 and ds.n_items == 3883
    assert ds.interactions is None and not ds.meta["has_ratings"]
    assert ds.users["occupation_code"].nunique() == 21
    assert (ds.users["occupation_code"] == 4).sum() == 759
    assert ds.users["age_band"].value_counts()["25-34"] == 2096


def test_upworthy(shared_data):
    ds = load_dataset("upworthy", shared_data / "upworthy")
    e = ds.experiments
    assert len(e) == 22666 and e["test_id"].nunique() == 4873
    assert e["impressions"].sum() == 81024151 and e["clicks"].sum() == 1231208
    assert e["headline"].nunique() == 12387
    one_headline = (e.groupby("test_id")["headline"].nunique() == 1).sum()
    assert one_headline == 2266


def test_youtube_comments(shared_data):
    ds = load_dataset("youtube", shared_data / "youtube-comment-likes")
    assert ds.n_items == 1869
    assert len(ds.comments) + ds.meta["duplicate_comment_rows_removed"] == 18409
    assert ds.meta["duplicate_video_rows_removed"] == 12


@pytest.mark.slow
def test_reddit_comments(shared_data):
    ds = load_dataset("reddit", shared_data / "reddit-college-comments")
    assert ds.n_items == 15815 and len(ds.comments) == 223144
    assert (ds.comments["depth"] == 0).sum() == 105515
    assert ds.comments["likes"].max() == 5880


def test_amazon_reviews(shared_data):
    ds = load_dataset("amazon-reviews", shared_data / "amazon-all-beauty-2018-reviews" / "All_Beauty_5.json.gz")
    assert ds.meta["exact_duplicates_removed"] == 1053
    assert len(ds.interactions) == 4216
    assert (ds.n_users, ds.n_items) == (991, 85)
    assert ((ds.comments["likes"] > 0).sum()) > 0
    # the shared folder itself (one review file beside SOURCE.md) loads the same data
    assert load_dataset("amazon-reviews", shared_data / "amazon-all-beauty-2018-reviews").summary() == ds.summary()


def test_save_load_roundtrip(tmp_path, shared_data):
    ds = load_dataset("scientific", shared_data / "amazon-scientific")
    ds.save(tmp_path / "sci")
    back = Dataset.load(tmp_path / "sci")
    assert back.summary() == ds.summary()
    assert back.items["categories"].iloc[0].tolist() == ds.items["categories"].iloc[0]
    assert np.array_equal(back.interactions["item_id"], ds.interactions["item_id"])
    assert set(back.sid_indexes) == set(ds.sid_indexes)
