import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset
from recsage.features.tables import load_tables, read_manifest


def test_tables_hold_every_given_signal_and_name_the_absent(ml_features, ml_prepared):
    items, users, manifest = load_tables(ml_features)
    ds = Dataset.load(ml_prepared)
    assert len(items) == ds.n_items == 1682 and len(users) == 943
    assert set(manifest["groups"]) == {"behaviour", "sid", "text", "tagcf"}
    assert set(manifest["absent"]) == {"reward", "lcu", "cot"}
    assert items["item_key"].tolist() == ds.items["raw_id"].astype(str).tolist()
    assert len(items["text_embedding"].iloc[0]) == 384 and "text_pca_31" in items
    assert items["sid"].iloc[0].startswith("<a_")
    assert {"sid_l1_distribution", "topic_distribution", "role_distribution", "role_source"} <= set(users.columns)
    # MovieLens users have profiles: their roles come from the profile, not from behaviour
    assert set(users["role_source"]) == {"profile"}
    assert (users["role_confidence"] == 1.0).all() and users["top_role"].str.len().gt(0).all()
    for col in ("event_timestamp", "created"):
        assert str(items[col].dtype).startswith("datetime64") and str(users[col].dtype).startswith("datetime64")
    for key in ("feature_version", "dataset_fingerprint", "schema", "created"):
        assert manifest[key]
    assert manifest["groups"]["sid"]["codebook_fingerprint"] and manifest["groups"]["tagcf"]["topics_version"]
    documented = {(r["table"], r["column"]) for r in manifest["schema"]}
    assert ("items", "pop_train") in documented and ("users", "role_distribution") in documented


def test_point_in_time_only_training_interactions_reach_the_tables(ml_prepared, tmp_path):
    """Changing every user's validation and test interactions (their last two) leaves the tables
    unchanged; changing a training interaction does not. OneReason chain columns included."""
    from recsage.pipelines.features import build_features
    from recsage.pipelines.onereason import build_cot

    ds = Dataset.load(ml_prepared)
    cot = tmp_path / "cot"
    build_cot(ml_prepared, cot)

    def variant(name: str, position_from_end: tuple[int, ...]) -> Path:
        inter = ds.interactions.copy()
        pos_from_end = inter.groupby("user_id").cumcount(ascending=False).to_numpy()
        mask = np.isin(pos_from_end, position_from_end)
        inter.loc[mask, "item_id"] = (inter.loc[mask, "item_id"] + 1) % ds.n_items
        out = tmp_path / name
        Dataset(ds.name, items=ds.items, interactions=inter, users=ds.users, meta=ds.meta).save(out)
        build_features(out, tmp_path / f"{name}-features", text=False, cot=cot)
        return tmp_path / f"{name}-features"

    base = tmp_path / "base-features"
    build_features(ml_prepared, base, text=False, cot=cot)
    later = variant("later-changed", (0, 1))
    earlier = variant("train-changed", (2,))
    b_items, b_users, b_man = load_tables(base)
    l_items, l_users, l_man = load_tables(later)
    e_items, _, e_man = load_tables(earlier)
    cols = ["item_id", "pop_train", "pop_train_recent", "event_timestamp"]
    pd.testing.assert_frame_equal(b_items[cols], l_items[cols])
    pd.testing.assert_frame_equal(b_users.drop(columns="created"), l_users.drop(columns="created"))
    assert b_man["dataset_fingerprint"] == l_man["dataset_fingerprint"] != e_man["dataset_fingerprint"]
    assert not b_items["pop_train_recent"].equals(e_items["pop_train_recent"])
    assert "cot" in b_man["groups"] and b_users["cot_interests"].map(len).gt(0).all()
    assert set(b_users["cot_dynamics"].explode().dropna()) <= {"long-term", "rising", "periodic", "one-off"}


def test_tables_load_with_datasets_and_pandas(ml_features):
    import datasets

    d = {t: datasets.load_dataset("parquet", data_files=str(ml_features / f"{t}.parquet"), split="train") for t in ("items", "users")}
    assert d["items"].num_rows == 1682 and d["users"].num_rows == 943
    row = d["items"][0]
    assert len(row["text_embedding"]) == 384 and isinstance(row["sid"], str)
    assert pd.read_parquet(ml_features / "users.parquet")["n_train_interactions"].min() >= 1


def test_bad_feature_folders_are_refused_with_file_and_field(ml_features, tmp_path, ml_prepared):
    from recsage.pipelines.data import load_split
    from recsage.pipelines.features import build_features, item_signals

    with pytest.raises(InvalidInputError, match="no manifest.json"):
        load_tables(tmp_path)
    ds, split = load_split(ml_prepared, "loo")
    # another dataset's (or split's) tables
    other = tmp_path / "other"
    shutil.copytree(ml_features, other)
    m = read_manifest(other)
    (other / "manifest.json").write_text(json.dumps({**m, "dataset_fingerprint": "0" * 16}))
    with pytest.raises(InvalidInputError, match="another dataset") as e:
        item_signals(other, ds, split)
    assert "manifest.json" in str(e.value)
    # a column the manifest promises is missing
    broken = tmp_path / "broken"
    shutil.copytree(ml_features, broken)
    pd.read_parquet(broken / "items.parquet").drop(columns=["sid_l1"]).to_parquet(broken / "items.parquet")
    with pytest.raises(InvalidInputError, match="sid_l1"):
        load_tables(broken)
    # NaN where a number must be
    nan = tmp_path / "nan"
    shutil.copytree(ml_features, nan)
    df = pd.read_parquet(nan / "items.parquet")
    df["pop_train"] = df["pop_train"].astype(float)
    df.loc[7, "pop_train"] = np.nan
    df.to_parquet(nan / "items.parquet")
    with pytest.raises(InvalidInputError, match="item_id 7") as e:
        item_signals(nan, ds, split)
    assert "pop_train" in str(e.value)
    # a corrupt Parquet file
    (nan / "users.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInputError, match="unreadable Parquet") as e:
        load_tables(nan)
    assert "users.parquet" in str(e.value)
    with pytest.raises(InvalidInputError, match="LCU"):
        build_features(ml_prepared, tmp_path / "x", lcu=tmp_path)


@pytest.mark.slow
def test_feast_repository_apply_historical_materialize_online(ml_features, tmp_path):
    """The real `feast` package: `feast apply` on the written repository, a point-in-time join for
    an entity frame, materialisation into SQLite and online lookups."""
    from feast import FeatureStore

    from recsage.pipelines.features import write_feast_repo

    repo = tmp_path / "repo"
    res = write_feast_repo(ml_features, repo)
    assert res["feature_views"] == ["items_features", "users_features"]
    with pytest.raises(InvalidInputError, match="already exists"):
        write_feast_repo(ml_features, repo)
    feast_cli = Path(sys.executable).parent / "feast"
    r = subprocess.run([str(feast_cli), "apply"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    store = FeatureStore(repo_path=str(repo))
    items = pd.read_parquet(ml_features / "items.parquet")
    now = pd.Timestamp.now(tz="UTC")
    entity = pd.DataFrame({"item_id": [0, 1, 50], "event_timestamp": [now] * 3})
    hist = store.get_historical_features(entity_df=entity, features=["items_features:pop_train", "items_features:sid"]).to_df()
    hist = hist.sort_values("item_id").reset_index(drop=True)
    assert hist["pop_train"].tolist() == items.loc[[0, 1, 50], "pop_train"].tolist()
    # before the features' event time there is nothing to join (point-in-time correctness)
    early = pd.DataFrame({"item_id": [0], "event_timestamp": [pd.Timestamp("1990-01-01", tz="UTC")]})
    assert store.get_historical_features(entity_df=early, features=["items_features:pop_train"]).to_df()["pop_train"].isna().all()
    store.materialize(start_date=datetime(1990, 1, 1, tzinfo=timezone.utc), end_date=datetime.now(timezone.utc) + timedelta(days=1))
    online = store.get_online_features(features=["items_features:sid", "users_features:n_train_interactions"],
                                       entity_rows=[{"item_id": 0, "user_id": 0}, {"item_id": 50, "user_id": 3}]).to_dict()
    users = pd.read_parquet(ml_features / "users.parquet").set_index("user_id")
    assert online["sid"] == items.loc[[0, 50], "sid"].tolist()
    assert online["n_train_interactions"] == [int(users.loc[0, "n_train_interactions"]), int(users.loc[3, "n_train_interactions"])]


def test_user_table_built_one_shard_at_a_time_equals_the_whole_build(ml_features, ml_prepared, tmp_path):
    """Training histories partitioned by user → the user table shard by shard (locally and on Ray):
    the same rows and values as `features build`, resumable, bad shards named."""
    from recsage.llm import BatchJob, EngineConfig
    from recsage.pipelines.shards import build_user_feature_shards, write_history_shards

    whole = pd.read_parquet(ml_features / "users.parquet").sort_values("user_id").reset_index(drop=True)
    info = write_history_shards(ml_prepared, tmp_path / "train", n_shards=3, queries="train")
    assert info["users"] == len(whole)
    meta = build_user_feature_shards(ml_features, tmp_path / "train", tmp_path / "users", progress=False)
    assert (meta["new_ok"], meta["users"], meta["new_failed"]) == (3, len(whole), 0)
    sharded = pd.read_parquet(tmp_path / "users" / "users").sort_values("user_id").reset_index(drop=True)
    assert list(sharded.columns) == list(whole.columns) and "role_distribution" in sharded
    pd.testing.assert_frame_equal(sharded, whole, check_dtype=False)
    manifest = json.loads((tmp_path / "users" / "manifest.json").read_text())
    assert manifest["tables"]["users"] == "users/" and manifest["rows"]["users"] == len(whole) and manifest["sharded"]["shards"] == 3
    assert build_user_feature_shards(ml_features, tmp_path / "train", tmp_path / "users", progress=False)["skipped_done"] == 3
    on_ray = build_user_feature_shards(ml_features, tmp_path / "train", tmp_path / "users-ray", progress=False,
                                       engine=EngineConfig(engine="ray", actors=1, cpus_per_actor=1, block_size=1))
    assert on_ray["new_ok"] == 3
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "users-ray" / "users").sort_values("user_id").reset_index(drop=True), whole,
                                  check_dtype=False)
    (tmp_path / "bad").mkdir()
    pd.DataFrame({"user_id": [1], "user_key": ["1"], "history": [[10**6]]}).to_parquet(tmp_path / "bad" / "part-0.parquet")
    assert build_user_feature_shards(ml_features, tmp_path / "bad", tmp_path / "users-bad", progress=False)["new_failed"] == 1
    error = BatchJob(tmp_path / "users-bad" / "job", lambda r: r).results()[0]["error"]
    assert "part-0.parquet" in error and "record 0" in error and "outside the item table" in error


def test_build_users_survives_kill_9(ml_features, ml_prepared, tmp_path):
    """`recsage features build-users` killed three times at random points and rerun: every shard
    exactly once, and the same rows as an uninterrupted run."""
    from _kill import kill_and_resume, recsage_argv

    from recsage.pipelines.shards import write_history_shards

    write_history_shards(ml_prepared, tmp_path / "train", n_shards=12, queries="train")
    report = kill_and_resume(lambda out: recsage_argv(["features", "build-users", "--features", str(ml_features), "--shards", str(tmp_path / "train"),
                                                       "--out", str(out)]), tmp_path / "run", None, reference=tmp_path / "ref", max_new_lines=2)
    assert report["kills"] == 3 and report["records"] == 12, report
    assert report["lost"] == report["duplicated"] == report["unexpected"] == report["failed"] == 0 and report["equal_to_uninterrupted"], report
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "run" / "users").sort_values("user_id").reset_index(drop=True),
                                  pd.read_parquet(tmp_path / "ref" / "users").sort_values("user_id").reset_index(drop=True))
