import math

import numpy as np

from recsage.evaluation import coverage, ndcg_at_k, recall_at_k, top_k


def test_recall_and_ndcg_hand_computed():
    ranked = np.array([[5, 3, 9], [1, 2, 3], [7, -1, -1]])
    targets = np.array([3, 4, 7])
    assert recall_at_k(ranked, targets, 1) == 1 / 3
    assert recall_at_k(ranked, targets, 3) == 2 / 3
    assert math.isclose(ndcg_at_k(ranked, targets, 3), (1 / math.log2(3) + 0 + 1.0) / 3)
    assert math.isclose(ndcg_at_k(ranked, targets, 1), 1 / 3)


def test_coverage():
    ranked = np.array([[0, 1], [1, 2], [-1, -1]])
    assert coverage(ranked, n_items=10, k=2) == 0.3


def test_top_k_breaks_ties_by_item_id():
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0]])
    ids, vals = top_k(scores, 2)
    assert ids.tolist() == [[1, 2], [0, 1]]
    assert vals[0].tolist() == [2.0, 2.0]


def test_top_k_never_returns_excluded_items():
    scores = np.array([[-np.inf, 1.0, -np.inf]])
    ids, _ = top_k(scores, 3)
    assert ids.tolist() == [[1, -1, -1]]
