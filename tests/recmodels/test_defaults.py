"""Defaults chosen from the data: values follow the data, user settings win, the report says why."""

import numpy as np

from recsage.datasets.splits import SequenceSet
from recsage.recmodels.defaults import DataProfile, adapt_params, sasrec_choices


def synthetic_sequences(n_users: int, length: int, n_items: int) -> SequenceSet:
    """Synthetic data (unit test only): `n_users` sequences of `length` random items."""
    rng = np.random.default_rng(0)
    return SequenceSet(np.arange(n_users), [rng.integers(0, n_items, length) for _ in range(n_users)], n_items)


def test_sparse_short_data_gets_short_window_and_many_epochs():
    c = sasrec_choices(DataProfile.of(synthetic_sequences(20_000, 7, 12_000)))
    assert c["max_len"].value == 50 and c["batch_size"].value == 128
    assert c["valid_users"].value == 5000
    assert 10 <= c["epochs"].value <= 200 and c["warmup_steps"].value < c["epochs"].value * 157 * 0.05


def test_small_dense_data_gets_long_window_small_batches_and_enough_steps():
    c = sasrec_choices(DataProfile.of(synthetic_sequences(900, 150, 1000)))
    assert c["max_len"].value == 150
    steps = int(np.ceil(900 / c["batch_size"].value))
    assert c["batch_size"].value < 128 and steps >= 20
    assert c["epochs"].value * steps >= 3000  # the collapse on small data was too few optimiser steps
    assert "valid_users" not in c


def test_user_settings_win_and_are_reported_as_such():
    params, report = adapt_params("sasrec", synthetic_sequences(500, 20, 300), {"dropout": 0.1, "max_train_seconds": 5})
    assert params["dropout"] == 0.1 and params["max_train_seconds"] == 5
    assert report["chosen"]["dropout"] == {"value": 0.1, "reason": "set by you"}
    assert report["chosen"]["max_len"]["reason"].startswith("90% of training sequences")
    assert report["profile"]["n_sequences"] == 500
    lazy, why = adapt_params("lazy", synthetic_sequences(500, 20, 300), {})
    assert lazy["warmup_steps"] < 0.05 * lazy["epochs"] * np.ceil(500 * 19 / lazy["batch_size"]) and "history_dropout" in why["chosen"]
    assert adapt_params("itemknn", synthetic_sequences(5, 3, 4), {"x": 1}) == ({"x": 1}, {})
