"""`recsage recommend` for many users at once: every user, a file of raw user ids, or supplied histories."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsage.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, bundled_data):
    from recsage.pipelines import prepare_dataset

    root = tmp_path_factory.mktemp("rec")
    prepare_dataset("scientific", bundled_data / "scientific-sample", root / "sci")
    r = runner.invoke(app, ["train", "itemknn", "--data", str(root / "sci"), "--out", str(root / "knn")])
    assert r.exit_code == 0, r.output
    return root


def test_all_users_to_parquet(trained):
    from recsage.datasets import Dataset

    ds = Dataset.load(trained / "sci")
    out = trained / "all.parquet"
    r = runner.invoke(app, ["recommend", "--model", str(trained / "knn" / "model"), "--data", str(trained / "sci"), "--users", "all", "--k", "5",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    recs = pd.read_parquet(out)
    assert list(recs.columns) == ["query", "rank", "item", "title", "score"]
    assert recs["query"].nunique() == ds.n_users and recs.groupby("query").size().max() == 5
    seen = ds.interactions.merge(ds.users[["user_id", "raw_id"]], on="user_id").merge(ds.items[["item_id", "raw_id"]], on="item_id", suffixes=("_u", "_i"))
    pairs = set(zip(seen["raw_id_u"].astype(str), seen["raw_id_i"].astype(str)))
    assert not any((q, i) in pairs for q, i in zip(recs["query"], recs["item"]))  # seen items excluded by default


def test_a_users_file_and_supplied_histories(trained):
    from recsage.datasets import Dataset

    ds = Dataset.load(trained / "sci")
    raw_users = ds.users["raw_id"].astype(str).tolist()[:2]
    users = trained / "synthetic_users.csv"
    users.write_text("user\n" + "\n".join(raw_users) + "\n")
    out = trained / "two.csv"
    r = runner.invoke(app, ["recommend", "--model", str(trained / "knn" / "model"), "--data", str(trained / "sci"), "--users", str(users),
                            "--out", str(out), "--include-seen"])
    assert r.exit_code == 0, r.output
    assert sorted(pd.read_csv(out, dtype=str)["query"].unique()) == sorted(raw_users)
    items = ds.items["raw_id"].astype(str).tolist()
    hist = trained / "synthetic_histories.jsonl"
    hist.write_text(json.dumps({"id": "visitor-1", "history": items[:3]}) + "\n" + json.dumps({"id": "visitor-2", "history": []}) + "\n")
    out = trained / "hist.jsonl"
    r = runner.invoke(app, ["recommend", "--model", str(trained / "knn" / "model"), "--data", str(trained / "sci"), "--histories", str(hist),
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {row["query"] for row in rows} == {"visitor-1", "visitor-2"}  # an empty history: popularity, counted
    report = json.loads(r.output[r.output.index("{\n"):])  # after the progress bar
    assert report["empty_histories"] == 1 and report["queries"] == 2


@pytest.mark.parametrize("case", ["unknown_user", "unknown_item", "no_out", "two_modes"])
def test_bad_batch_requests_are_clean_errors(trained, case):
    users, hist = trained / "synthetic_bad_users.csv", trained / "synthetic_bad_histories.jsonl"
    users.write_text("user\nnobody-42\n")
    hist.write_text(json.dumps({"id": "v", "history": ["no-such-item"]}) + "\n")
    base = ["recommend", "--model", str(trained / "knn" / "model"), "--data", str(trained / "sci")]
    argv, message = {
        "unknown_user": (base + ["--users", str(users), "--out", str(trained / "x.parquet")], "unknown user 'nobody-42'"),
        "unknown_item": (base + ["--histories", str(hist), "--out", str(trained / "x.parquet")], "unknown item id(s) ['no-such-item']"),
        "no_out": (base + ["--users", "all"], "--out"),
        "two_modes": (base + ["--users", "all", "--user", "1", "--out", str(trained / "x.parquet")], "exactly one of"),
    }[case]
    r = runner.invoke(app, argv)
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and message in out and "Traceback" not in r.output, out
    if case in ("unknown_user", "unknown_item"):
        assert "line 2" in out or "line 1" in out
        assert not (trained / "x.parquet").exists()


def test_evaluate_scores_user_supplied_queries(trained):
    from recsage.datasets import Dataset

    ds = Dataset.load(trained / "sci")
    items = ds.items["raw_id"].astype(str).tolist()
    q = trained / "synthetic_queries.jsonl"
    q.write_text("".join(json.dumps({"history": items[i : i + 3], "target": items[i + 3]}) + "\n" for i in range(0, 40, 4)))
    r = runner.invoke(app, ["evaluate", "--model", str(trained / "knn" / "model"), "--data", str(trained / "sci"), "--queries", str(q), "--ks", "10"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    assert res["n_users"] == 10 and 0 <= res["ndcg@10"] <= 1
    q.write_text(json.dumps({"history": items[:2], "target": "no-such-item"}) + "\n")
    r = runner.invoke(app, ["evaluate", "--model", str(trained / "knn" / "model"), "--data", str(trained / "sci"), "--queries", str(q)])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "line 1" in out and "target" in out and "no-such-item" in out
