"""Real Beauty data shared by the torch recommender tests (loaded once per module)."""

import pytest

from recsage.datasets import leave_one_out, load_dataset
from recsage.pipelines.sid import published_sid_table


@pytest.fixture(scope="module")
def beauty(shared_data):
    return load_dataset("beauty", shared_data / "amazon-beauty")


@pytest.fixture(scope="module")
def small_split(beauty):
    """Leave-one-out on Beauty, keeping the first 3,000 users' training sequences (all items)."""
    sp = leave_one_out(beauty)
    sp.train.sequences = sp.train.sequences[:3000]
    sp.train.user_ids = sp.train.user_ids[:3000]
    return sp


@pytest.fixture(scope="module")
def sid_table(beauty):
    return published_sid_table(beauty, "published")
