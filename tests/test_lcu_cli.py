"""`recsage lcu …` end to end on real Reddit threads, and LCU columns in the feature tables."""

from __future__ import annotations

import json
import shutil

import pandas as pd
from typer.testing import CliRunner

from recsage.cli import app

runner = CliRunner()


def youtube_subset(src, dst, *, n_comments: int):
    """The first `n_comments` rows of the real YouTube comments (and every video): a short real-MiniLM pass."""
    dst.mkdir()
    shutil.copy(src / "videos-stats.csv", dst / "videos-stats.csv")
    pd.read_csv(src / "comments.csv").head(n_comments).to_csv(dst / "comments.csv", index=False)
    return dst


def test_annotate_with_the_real_model_then_distill_train_evaluate(shared_data, lcu_work, tmp_path):
    data = shared_data / "reddit-college-comments"
    out = tmp_path / "a2c"
    shutil.copytree(lcu_work, out)
    r = runner.invoke(app, ["lcu", "annotate", "--data", str(data), "--out", str(out), "--n", "62", "--model", "small"])
    assert r.exit_code == 0, r.output
    assert "labelled 2 new" in r.output and "58 already done" not in r.output  # 60 were done: only 2 new
    r = runner.invoke(app, ["lcu", "distill", "--data", str(data), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "held-out labels" in r.output and (out / "comment_labels.parquet").exists()
    yt = youtube_subset(shared_data / "youtube-comment-likes", tmp_path / "yt", n_comments=300)
    r = runner.invoke(app, ["lcu", "popularity", "--data", str(yt), "--student", str(out / "student"), "--seeds", "0"])
    assert r.exit_code == 0, r.output
    assert "ranker: surface + text + labels" in " ".join(r.output.split()) and "longest first" in r.output
    r = runner.invoke(app, ["lcu", "train", "--data", str(data), "--out", str(out), "--epochs", "1", "--no-labels", "--aux-user", "0"])
    assert r.exit_code == 0, r.output
    assert "xauc" in r.output and "popular_ndcg@1" in r.output and "user_ndcg@1" not in r.output
    r = runner.invoke(app, ["lcu", "evaluate", "--data", str(data), "--out", str(out), "--split", "valid"])
    assert r.exit_code == 0, r.output and "auc" in r.output
    saved = json.loads((out / "sections.json").read_text())
    assert saved["config"]["max_threads"] == 150  # every step reused the folder's settings


def test_lcu_cli_errors_are_one_line(tmp_path, shared_data):
    r = runner.invoke(app, ["lcu", "distill", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "error:" in r.output and "threads.csv.gz" in r.output.replace("\n", "")
    r = runner.invoke(app, ["lcu", "train", "--data", str(shared_data / "reddit-college-comments"), "--out", str(tmp_path / "o2"), "--epochs", "1"])
    assert r.exit_code == 2 and "lcu distill" in " ".join(r.output.split())


def test_lcu_columns_join_the_feature_tables(shared_data, lcu_work, tmp_path):
    from recsage.pipelines.data import prepare_dataset
    from recsage.pipelines.features import build_features

    prepare_dataset("reddit", shared_data / "reddit-college-comments", tmp_path / "prepared")
    m = build_features(tmp_path / "prepared", tmp_path / "features", lcu=lcu_work, text=False)
    assert "lcu" in m["groups"] and "lcu" not in m["absent"] and m["groups"]["lcu"]["labelled_by"].startswith("MiniLM student")
    items = pd.read_parquet(tmp_path / "features" / "items.parquet")
    covered = items[items["lcu_comments"] > 0]
    assert 50 < len(covered) <= 150 and covered["lcu_share_question"].between(0, 1).all()
    assert any(r["column"] == "lcu_mean_sentiment" for r in m["schema"])
