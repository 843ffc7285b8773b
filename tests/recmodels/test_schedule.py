"""The learning-rate schedule is a pure function of the step, so resume needs no scheduler state."""

import pytest

from recsage.recmodels.trainer import TrainerConfig, lr_at


def test_cosine_schedule_with_warmup():
    c = TrainerConfig(lr=1e-3, schedule="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(c, 0, 110) == pytest.approx(1e-4)  # warmup starts small
    assert lr_at(c, 9, 110) == pytest.approx(1e-3)
    assert lr_at(c, 10, 110) == pytest.approx(1e-3)  # then decays...
    assert lr_at(c, 60, 110) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(c, 110, 110) == pytest.approx(1e-4)  # ...to the floor
    assert [lr_at(c, s, 110) for s in range(10, 111)] == sorted((lr_at(c, s, 110) for s in range(10, 111)), reverse=True)
    assert lr_at(TrainerConfig(lr=2e-3), 500, 110) == 2e-3  # constant


def test_unknown_schedule_is_refused():
    from torch import nn

    from recsage.recmodels.trainer import Trainer

    with pytest.raises(ValueError, match="unknown schedule"):
        Trainer(nn.Linear(2, 1), TrainerConfig(schedule="step"), batches=lambda e: [], loss=lambda m, b: None).fit()
