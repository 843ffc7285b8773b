"""`recsage onereason build-cot | export-sft | train | explain` on the bundled sample (synthetic
unit-test codebook), and their clean errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from recsage.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def prepared(bundled_data, tmp_path_factory):
    from recsage.datasets import Dataset
    from recsage.pipelines import prepare_dataset
    from recsage.tokenizers import SIDTable

    root = tmp_path_factory.mktemp("or-cli")
    prepare_dataset("scientific", bundled_data / "scientific-sample", root / "sci")
    n = Dataset.load(root / "sci").n_items
    SIDTable(np.stack([np.arange(n) // 64, np.arange(n) % 64, np.zeros(n, dtype=int)], 1)).save(root / "sid")
    return root


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_build_cot_export_train_explain(prepared):
    root = prepared
    r = runner.invoke(app, ["onereason", "build-cot", "--data", str(root / "sci"), "--out", str(root / "cot")])
    assert r.exit_code == 0, r.output
    assert "chains" in r.output and (root / "cot" / "chains.parquet").exists()
    r = runner.invoke(app, ["onereason", "export-sft", "--data", str(root / "sci"), "--sid", str(root / "sid"), "--cot", str(root / "cot"),
                            "--out", str(root / "sft"), "--perception-limit", "4"])
    assert r.exit_code == 0, r.output
    assert json.loads((root / "sft" / "sft_meta.json").read_text())["by_task"]["title_to_sid"] == 4
    r = runner.invoke(app, ["onereason", "train", "--data", str(root / "sci"), "--sid", str(root / "sid"), "--out", str(root / "run"),
                            "--set", "epochs=1", "--set", "max_steps_per_epoch=2", "--set", "dim=32", "--set", "n_heads=2", "--set", "valid_users=50",
                            "--set", "progress=false"])
    assert r.exit_code == 0, r.output
    out = _flat(r.output)
    assert all(m in out for m in ("think", "grounded", "nothink", "race"))
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert set(metrics["modes"]) == {"think", "grounded", "nothink", "race"} and metrics["method"] == "thinking"
    r = runner.invoke(app, ["onereason", "explain", "--model", str(root / "run" / "model"), "--data", str(root / "sci"), "--user", "3", "--k", "3"])
    assert r.exit_code == 0, r.output
    out = _flat(r.output)
    assert "interests in the history" in out and "model's deduction" in out and "recommendations" in out


def test_clean_errors(prepared, tmp_path):
    root = prepared
    r = runner.invoke(app, ["onereason", "export-sft", "--data", str(root / "sci"), "--sid", str(root / "sid"), "--cot", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "build-cot" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["onereason", "train", "--data", str(root / "sci"), "--sid", str(root / "sid"), "--out", str(tmp_path / "r"), "--thought", "vibes"])
    assert r.exit_code == 2 and "unknown thought" in r.output
    r = runner.invoke(app, ["onereason", "explain", "--model", str(tmp_path), "--data", str(root / "sci"), "--user", "1"])
    assert r.exit_code == 2 and "config.json" in r.output
    r = runner.invoke(app, ["onereason", "build-cot", "--data", str(root / "sci"), "--out", str(tmp_path / "c"), "--interest-key", "sid"])
    assert r.exit_code == 2 and "needs the items' Semantic IDs" in _flat(r.output)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "chains.parquet").write_bytes(b"not parquet")
    r = runner.invoke(app, ["onereason", "export-sft", "--data", str(root / "sci"), "--sid", str(root / "sid"), "--cot", str(tmp_path / "bad"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "Parquet" in r.output
