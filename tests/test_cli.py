import json

from typer.testing import CliRunner

from recsage.cli import app

runner = CliRunner()


def test_prepare_info_eval(tmp_path, shared_data):
    out = tmp_path / "ml"
    r = runner.invoke(app, ["data", "prepare", "movielens", "--src", str(shared_data / "movielens-100k"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_interactions"] == 100000
    assert (out / "splits" / "loo.parquet").exists() and (out / "splits" / "chrono811.parquet").exists()
    r = runner.invoke(app, ["data", "info", str(out)])
    assert r.exit_code == 0 and "943" in r.output
    res = tmp_path / "res.json"
    r = runner.invoke(app, ["eval", "--data", str(out), "--method", "itemknn", "--protocol", "chrono811", "--out", str(res)])
    assert r.exit_code == 0, r.output
    row = json.loads(res.read_text())[0]
    assert row["protocol"] == "chrono811" and row["exclude_seen"] is False and row["recall@10"] > 0


def test_generic_prepare_with_skip_bad(tmp_path):
    log = tmp_path / "synthetic_log.csv"
    log.write_text("uid,sku,ts\nu1,a,1\nu1,b,x\nu2,a,3\nu2,b,4\nu2,c,5\n")
    out = tmp_path / "g"
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(log), "--out", str(out), "--mapping", "user=uid,item=sku,timestamp=ts"])
    assert r.exit_code == 2 and "line 3" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["data", "prepare", "generic", "--src", str(log), "--out", str(out), "--mapping", "user=uid,item=sku,timestamp=ts", "--skip-bad"])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "validation_report.json").read_text())
    assert rep["n_skipped"] == 1 and rep["examples"][0]["record"] == "line 3"


def test_clean_error_for_missing_source(tmp_path):
    r = runner.invoke(app, ["data", "prepare", "beauty", "--src", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "error:" in r.output


def test_unknown_kind(tmp_path):
    r = runner.invoke(app, ["data", "prepare", "netflix", "--src", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "known:" in r.output


def test_demo_runs_on_bundled_sample(tmp_path, bundled_data):
    """The whole demo, with the real embedded LLM (the small one, to keep the suite fast)."""
    r = runner.invoke(app, ["demo", "--data", str(bundled_data), "--out", str(tmp_path / "demo"), "--model", "small", "--llm-items", "2",
                                 "--train-seconds", "10"])
    assert r.exit_code == 0, r.output
    assert "itemknn" in r.output and "userknn" in r.output and "400 headline A/B tests" in r.output
    assert "over itemknn + userknn + ease" in r.output
    assert "TagCF" in r.output and "2 items tagged, 0 failed" in r.output
    assert "Scale-out" in r.output and "same tags as the local engine for 2/2" in r.output
    assert "PushGen" in r.output and "held-out accuracy" in r.output
    assert "Semantic IDs" in r.output and "<a_" in r.output
    assert "Feature tables" in r.output and "Ranking stage" in r.output and "the score by" in r.output
    assert "LCU" in r.output
    assert "OneReason" in r.output and "verifier:" in r.output and "SFT export:" in r.output and "the model deduced" in r.output
    from recsage.pipelines.demo import shared_reddit_dir

    if shared_reddit_dir() is not None:  # the Reddit threads are beside the clone: the LCU step ran
        assert "engagement model (test): AUC" in r.output and "committed teacher labels" in r.output


def test_push_cli_errors_are_one_line(tmp_path):
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\n1,pH meter\n")
    r = runner.invoke(app, ["push", "generate", "--items", str(items), "--out", str(tmp_path / "o.parquet"), "--styles", "shouty"])
    assert r.exit_code == 2 and "unknown style 'shouty'" in r.output
    r = runner.invoke(app, ["push", "score", "--model", str(tmp_path), "Hello"])
    assert r.exit_code == 2 and "no config.json" in r.output


def test_tagcf_cli_needs_tags(tmp_path):
    r = runner.invoke(app, ["tagcf", "graph", "--data", str(tmp_path), "--tags", str(tmp_path), "--out", str(tmp_path / "g")])
    assert r.exit_code == 2 and "error:" in r.output


def test_train_with_no_settings_chooses_them_from_the_data_and_says_why(tmp_path, bundled_data):
    """`recsage train sasrec` with only a step cap: the other values come from the data and the
    run's report lists each with its reason; `--fixed-defaults` turns that off."""
    from recsage.pipelines import prepare_dataset

    prepare_dataset("scientific", bundled_data / "scientific-sample", tmp_path / "sci")
    r = runner.invoke(app, ["train", "sasrec", "--data", str(tmp_path / "sci"), "--out", str(tmp_path / "run"), "--set", "epochs=2",
                            "--set", "progress=false"])
    assert r.exit_code == 0, r.output
    assert "settings chosen from the data" in r.output
    row = json.loads((tmp_path / "run" / "metrics.json").read_text())
    chosen = row["defaults"]["chosen"]
    assert chosen["epochs"] == {"value": 2, "reason": "set by you"}
    assert chosen["max_len"]["value"] >= 50 and "90% of training sequences" in chosen["max_len"]["reason"]
    assert row["defaults"]["profile"]["n_sequences"] > 0 and row["stopped_by_time"] is False
    saved = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["params"]
    assert saved["max_len"] == chosen["max_len"]["value"] and saved["mask_padding"] is True
    r = runner.invoke(app, ["train", "sasrec", "--data", str(tmp_path / "sci"), "--out", str(tmp_path / "fixed"), "--set", "epochs=1",
                            "--set", "progress=false", "--fixed-defaults"])
    assert r.exit_code == 0, r.output
    assert "defaults" not in json.loads((tmp_path / "fixed" / "metrics.json").read_text())


def test_settings_lists_each_methods_keys_with_defaults_and_meaning():
    r = runner.invoke(app, ["settings", "diffgrm"])
    assert r.exit_code == 0 and "ocn_fraction" in r.output and "least-confident" in r.output and "peak learning rate" in r.output
    r = runner.invoke(app, ["settings", "sasrec"])
    assert r.exit_code == 0 and "attention_rank" in r.output
    assert "no settings" in runner.invoke(app, ["settings", "itemknn"]).output
    r = runner.invoke(app, ["settings", "bert4rec"])
    assert r.exit_code == 2 and "unknown method 'bert4rec'" in r.output
