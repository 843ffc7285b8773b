"""Every kind of saved artifact a command loads, corrupted — garbage, truncated, empty, a config
that does not match — is one clean error naming the file or folder (exit 2, no traceback)."""

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsage.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, bundled_data):
    from recsage.pipelines import prepare_dataset

    root = tmp_path_factory.mktemp("corrupt")
    prepare_dataset("scientific", bundled_data / "scientific-sample", root / "sci")
    for argv in (["train", "sasrec", "--data", str(root / "sci"), "--out", str(root / "run"), "--set", "epochs=1", "--set", "progress=false", "--set", "dim=16"],
                 ["train", "itemknn", "--data", str(root / "sci"), "--out", str(root / "knn")],
                 ["sid", "fit", "--items", str(root / "sci"), "--source", "cf", "--levels", "2", "--codes", "8", "--collision", "suffix", "--out", str(root / "sid")]):
        r = runner.invoke(app, argv)
        assert r.exit_code == 0, r.output
    return root


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])


CASES = {  # name: (folder to copy, file to break, how, command with {copy} and {root}, what the error must say)
    "weights_garbage": ("run/model", "model.safetensors", lambda p: p.write_bytes(os.urandom(500)), "evaluate", "corrupt or mismatched saved model"),
    "weights_truncated": ("run/model", "model.safetensors", truncate, "evaluate", "corrupt or mismatched saved model"),
    "weights_empty": ("run/model", "model.safetensors", lambda p: p.write_bytes(b""), "evaluate", "corrupt or mismatched saved model"),
    "config_not_json": ("run/model", "config.json", lambda p: p.write_text("{oops"), "evaluate", "not valid JSON"),
    "config_wrong_size": ("run/model", "config.json", lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "n_items": 5})), "evaluate",
                          "corrupt or mismatched saved model"),
    "config_missing_params": ("run/model", "config.json", lambda p: p.write_text(json.dumps({"class": "sasrec", "format_version": 1})), "evaluate",
                              "corrupt or mismatched saved model"),
    "knn_matrix_garbage": ("knn/model", "similarity.npz", lambda p: p.write_bytes(b"garbage"), "evaluate", "unreadable item-kNN matrices"),
    "parquet_garbage": ("sci", "interactions.parquet", lambda p: p.write_bytes(b"PAR1garbagePAR1"), "evaluate-data", "not a readable Parquet table"),
    "parquet_truncated": ("sci", "items.parquet", truncate, "evaluate-data", "not a readable Parquet table"),
    "checkpoint_garbage": ("run", "checkpoints/last.pt", lambda p: p.write_bytes(b"garbage"), "resume", "cannot resume from this checkpoint"),
    "checkpoint_truncated": ("run", "checkpoints/last.pt", truncate, "resume", "cannot resume from this checkpoint"),
    "sid_table_garbage": ("sid", "sids.parquet", lambda p: p.write_bytes(b"garbage"), "train-lazy", "sids.parquet"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_corrupt_artifact_is_one_clean_error(saved, tmp_path, name):
    folder, file, breaks, command, message = CASES[name]
    copy = tmp_path / "copy"
    shutil.copytree(saved / folder, copy)
    breaks(copy / file)
    sci = str(saved / "sci")
    argv = {
        "evaluate": ["evaluate", "--model", str(copy), "--data", sci],
        "evaluate-data": ["evaluate", "--model", str(saved / "knn" / "model"), "--data", str(copy)],
        "resume": ["train", "sasrec", "--data", sci, "--out", str(copy), "--set", "epochs=2", "--set", "progress=false", "--set", "dim=16"],
        "train-lazy": ["train", "lazy", "--data", sci, "--sid", str(copy), "--out", str(tmp_path / "lazy"), "--set", "epochs=1"],
    }[command]
    r = runner.invoke(app, argv)
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit), (r.exception, out)
    assert r.exit_code == 2 and "Traceback" not in r.output, out
    assert message in out and str(copy) in out, out
