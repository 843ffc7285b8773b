"""With progress bars off, long jobs still print a status line at a fixed interval."""

import time

import numpy as np
import torch

from recsage.llm.batch import BatchJob
from recsage.recmodels.trainer import Trainer, TrainerConfig


def test_batch_job_without_a_bar_prints_status_lines(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSAGE_HEARTBEAT_SECONDS", "0.1")

    def slow(record):
        time.sleep(0.15)
        return {"n": record["id"]}

    BatchJob(tmp_path / "job", slow, progress=False, desc="synthetic job").run([{"id": i} for i in range(4)], total=4)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[recsage] synthetic job:")]
    assert len(lines) >= 2 and "ok" in lines[-1] and "of 4" in lines[-1]


def test_trainer_without_a_bar_prints_status_lines(capsys, monkeypatch):
    monkeypatch.setenv("RECSAGE_HEARTBEAT_SECONDS", "0.05")
    module = torch.nn.Linear(4, 1)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32))

    def batches(epoch):
        for lo in range(0, 64, 8):
            yield x[lo : lo + 8]

    def loss(model, batch):
        time.sleep(0.02)
        return model(batch).pow(2).mean()

    Trainer(module, TrainerConfig(epochs=2, progress=False), batches=batches, loss=loss).fit()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("[recsage] training: epoch")]
    assert lines and "step" in lines[0] and "loss" in lines[0]
