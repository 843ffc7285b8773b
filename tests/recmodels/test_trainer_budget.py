"""The time budget stops training inside an epoch, and the partial epoch is still validated and
checkpointed: a model whose single epoch outlasts the budget must not overrun it."""

import time

import torch
from torch import nn

from recsage.recmodels.trainer import Trainer, TrainerConfig


def test_budget_stops_mid_epoch_then_validates_and_checkpoints(tmp_path):
    module = nn.Linear(2, 1)
    batches = [torch.randn(4, 2) for _ in range(200)]
    validated = []

    def loss(model, x):
        time.sleep(0.005)
        return model(x).pow(2).mean()

    def validate():
        validated.append(True)
        return 0.5

    cfg = TrainerConfig(epochs=3, max_seconds=0.1, progress=False, checkpoint_dir=str(tmp_path))
    res = Trainer(module, cfg, batches=lambda epoch: batches, loss=loss, validate=validate).fit()
    assert res.stopped_by_time and res.epochs_run == 1
    assert 0 < res.history[0]["partial"] < 1  # far fewer than the 200 steps (~1 s) were run
    assert validated == [True] and res.best_epoch == 0
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
