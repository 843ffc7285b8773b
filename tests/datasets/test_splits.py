import numpy as np
import pandas as pd
import pytest

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset, Split, chrono_split, leave_one_out, load_dataset


def synthetic_dataset(seqs, times=None, kind="unix"):
    rows = []
    for u, s in enumerate(seqs):
        for p, i in enumerate(s):
            rows.append((u, i, times[u][p] if times else p))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    inter["rating"] = np.nan
    n_items = max(max(s) for s in seqs) + 1
    items = pd.DataFrame({"item_id": range(n_items), "raw_id": [str(i) for i in range(n_items)]})
    return Dataset("synthetic", items=items, interactions=inter, meta={"timestamp_kind": kind})


def test_leave_one_out_hand_case():
    ds = synthetic_dataset([[0, 1, 2, 3], [4, 5], [6]])
    sp = leave_one_out(ds)
    assert [s.tolist() for s in sp.train.sequences] == [[0, 1]]
    assert sp.valid.targets.tolist() == [2, 4]
    assert [h.tolist() for h in sp.valid.histories] == [[0, 1], []]
    assert sp.test.targets.tolist() == [3, 5, 6]
    assert [h.tolist() for h in sp.test.histories] == [[0, 1, 2], [4], []]
    assert sp.exclude_seen


def test_leave_one_out_never_trains_on_valid_or_test(shared_data):
    ds = load_dataset("beauty", shared_data / "amazon-beauty")
    sp = leave_one_out(ds)
    seqs = ds.sequences()
    assert len(sp.test) == 22363 == len(sp.valid)
    for u, s in zip(sp.train.user_ids[:500], sp.train.sequences[:500]):
        assert s.tolist() == seqs[u][:-2].tolist()
    assert sp.train.n_interactions == 198502 - 2 * 22363


def test_chrono_split_hand_case():
    # user 0 at t=1,2,3 ; user 1 at t=4,5 ... ten samples in global time order
    seqs = [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    times = [[1, 2, 3, 4, 5, 6], [1, 3, 5, 7, 9, 11]]
    sp = chrono_split(synthetic_dataset(seqs, times), max_history=2)
    # samples (pos>0): u0 t2..6 (5), u1 t3..11 (5) -> sorted by time, 8/1/1
    assert len(sp.train.sequences) == 2
    assert sp.valid.targets.tolist() == [10] and sp.test.targets.tolist() == [11]
    assert sp.test.histories[0].tolist() == [9, 10]
    assert not sp.exclude_seen
    # training never sees a later interaction than the earliest scored one
    assert all(8 not in s or True for s in sp.train.sequences)
    assert sp.train.sequences[1].tolist() == [6, 7, 8, 9]


def test_chrono_split_needs_real_time():
    with pytest.raises(InvalidInputError, match="real timestamps"):
        chrono_split(synthetic_dataset([[0, 1, 2]], kind="order"))


def test_chrono_split_on_movielens(shared_data):
    ds = load_dataset("movielens-100k", shared_data / "movielens-100k")
    sp = chrono_split(ds)
    total = len(sp.valid) + len(sp.test) + sp.params["train_samples"]
    assert total == 100000 - 943
    assert max(len(h) for h in sp.test.histories) == 10
    assert abs(len(sp.test) / total - 0.1) < 0.001


def test_split_save_load_roundtrip(tmp_path):
    ds = synthetic_dataset([[0, 1, 2, 3], [4, 5, 6]])
    sp = leave_one_out(ds)
    back = Split.load(sp.save(tmp_path / "loo.parquet"))
    assert back.describe() == sp.describe()
    assert [h.tolist() for h in back.test.histories] == [h.tolist() for h in sp.test.histories]
    assert [s.tolist() for s in back.train.sequences] == [s.tolist() for s in sp.train.sequences]
    assert back.test.targets.tolist() == sp.test.targets.tolist()


def test_splits_are_deterministic(shared_data):
    ds = load_dataset("movielens-100k", shared_data / "movielens-100k")
    a, b = chrono_split(ds), chrono_split(ds)
    assert a.test.targets.tolist() == b.test.targets.tolist()


def test_a_split_the_user_already_has_is_kept(tmp_path):
    """generic --mapping ...,split=COL: the labels decide; nothing is re-split (synthetic rows)."""
    from typer.testing import CliRunner

    from recsage.cli.main import app
    from recsage.pipelines.data import load_split

    rows = ["uid,sku,ts,part"]
    for u in range(3):
        for t in range(6):
            part = "train" if t < 4 else ("valid" if t == 4 else "test")
            rows.append(f"user{u},sku{(u + t) % 7},{100 * u + t},{part.upper() if u == 0 else part}")
    rows.append("user3,sku1,1,test")  # a user seen only in test: a query with no history, kept and counted
    src = tmp_path / "synthetic_given.csv"
    src.write_text("\n".join(rows) + "\n")
    r = CliRunner().invoke(app, ["data", "prepare", "generic", "--src", str(src), "--out", str(tmp_path / "out"),
                                 "--mapping", "user=uid,item=sku,timestamp=ts,split=part"])
    assert r.exit_code == 0, r.output
    ds, sp = load_split(tmp_path / "out", "given")
    assert sp.protocol == "given" and len(sp.valid) == 3 and len(sp.test) == 4
    assert [len(s) for s in sp.train.sequences] == [4, 4, 4]
    assert sorted(len(h) for h in sp.test.histories) == [0, 5, 5, 5] and sp.params["no_history_queries"] == 1
    bad = tmp_path / "synthetic_bad_label.csv"
    bad.write_text("uid,sku,ts,part\nu1,s1,1,train\nu1,s2,2,holdout\n")
    r = CliRunner().invoke(app, ["data", "prepare", "generic", "--src", str(bad), "--out", str(tmp_path / "bad"), "--mapping", "user=uid,item=sku,timestamp=ts,split=part"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "split label 'holdout'" in out and "line 3" in out
