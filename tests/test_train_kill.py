"""`recsage train` killed with SIGKILL three times and resumed with the same command ends with the
model and metrics of an uninterrupted run (a CLI-level test: real processes, real kills)."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def train_cmd(data, out):
    # 30 short epochs: a kill lands up to 0.4 s after a checkpoint, and on an idle machine that is
    # several epochs of this tiny model — with 8 epochs the first kill could fall after the last one
    # (seen once on a clean clone: "finished before three kills")
    return [sys.executable, "-m", "recsage.cli", "train", "sasrec", "--data", str(data), "--out", str(out), "--set", "epochs=30",
            "--set", "dim=16", "--set", "patience=40", "--set", "progress=false"]


def checkpoint_epoch(out) -> int:
    """The epoch of the newest checkpoint (-1: none yet), read from the process-independent file's mtime order."""
    path = out / "checkpoints" / "last.pt"
    if not path.exists():
        return -1
    import torch

    try:
        return json.loads(torch.load(path, weights_only=True)["meta"])["epoch"]
    except Exception:  # being replaced right now: ask again
        return -2


def test_train_killed_three_times_equals_an_uninterrupted_run(tmp_path, bundled_data):
    from recsage.pipelines import prepare_dataset

    prepare_dataset("scientific", bundled_data / "scientific-sample", tmp_path / "sci")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(train_cmd(tmp_path / "sci", tmp_path / "whole"), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    rng = random.Random(0)
    out = tmp_path / "killed"
    kills, seen = 0, -1
    while kills < 3:
        proc = subprocess.Popen(train_cmd(tmp_path / "sci", out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while checkpoint_epoch(out) <= seen and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.4))  # somewhere in the next epoch, its checkpoint write or the final evaluation
        if proc.poll() is not None:
            break  # finished before the kill: nothing left to interrupt
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        seen = max(seen, checkpoint_epoch(out))
    assert kills == 3, "the run finished before three kills: give it more epochs"
    last = subprocess.run(train_cmd(tmp_path / "sci", out), env=env, capture_output=True, text=True, timeout=600)
    assert last.returncode == 0, last.stderr[-2000:]
    assert "resumed from the checkpoint after epoch" in last.stdout

    a = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "best_epoch", "epochs_run"):
        assert a[key] == pytest.approx(b[key], abs=1e-12), key
    assert b["resumed_from_epoch"] is not None and b["train_seconds"] > 0
    wa, wb = load_file(str(tmp_path / "whole" / "model" / "model.safetensors")), load_file(str(out / "model" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)
