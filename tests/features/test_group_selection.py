"""Feature-group selection by cross-validation on the ranker's own (validation) queries."""

from dataclasses import replace

import numpy as np
import pytest

from recsage.core.errors import InvalidInputError
from recsage.features.group_selection import query_ndcg, select_groups
from recsage.features.pairs import PairFeaturizer
from recsage.features.two_stage import RankingData, build_ranking_data
from recsage.pipelines.data import load_split
from recsage.pipelines.features import item_signals
from recsage.recmodels import ItemKNNRecommender, PopularityRecommender
from recsage.recmodels.ranker import LambdaRankerConfig


def test_query_ndcg_ranks_the_relevant_row_and_counts_ties_against_it():
    query = np.array([0, 0, 0, 1, 1, 2, 2])
    labels = np.array([0, 1, 0, 1, 0, 0, 0], dtype=np.float32)  # query 2: its candidates miss the target
    scores = np.array([3.0, 2.0, 1.0, 5.0, 5.0, 1.0, 2.0])
    out = query_ndcg(query, labels, scores, 3, k=10)
    assert out.tolist() == pytest.approx([1 / np.log2(3), 1 / np.log2(3), 0.0])  # query 1: a tie puts the relevant row second
    assert query_ndcg(query, labels, scores, 3, k=1).tolist() == [0.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def valid_data(ml_prepared):
    """Real ML-100K validation queries and their candidates, behaviour features only."""
    ds, split = load_split(ml_prepared, "loo")
    retrievers = {"itemknn": ItemKNNRecommender().fit(split.train), "popularity": PopularityRecommender().fit(split.train)}
    featurizer = PairFeaturizer(item_signals(None, ds, split)).fit(split.train)
    return split, build_ranking_data(retrievers, featurizer, split.valid.histories, 30, split.exclude_seen)


def with_group(data: RankingData, prefix: str, cols: np.ndarray) -> RankingData:
    names = [f"{prefix}.c{i}" for i in range(cols.shape[1])]
    return RankingData(data.candidates, np.hstack([data.x, cols.astype(data.x.dtype)]), data.query, data.names + names)


def test_selection_keeps_evidence_and_drops_noise_on_real_queries(valid_data):
    split, data = valid_data
    rng = np.random.default_rng(1)
    y = data.labels(split.valid.targets)
    informative = (y + rng.normal(0, 0.7, len(y)))[:, None]  # a weak copy of the label, for the "text" group
    noisy = with_group(with_group(data, "text", informative), "reward", rng.normal(size=(len(y), 30)))
    config = LambdaRankerConfig(compact_rounds=30)
    kept, trace = select_groups(noisy, split.valid.targets, config, user_ids=split.valid.user_ids, seed=1)
    assert kept == ["behaviour", "text"]  # the label-bearing group stays, 30 columns of noise go, behaviour is never tried
    assert trace[0]["groups"] == ["behaviour", "text", "reward"] and trace[0]["dropped"] is None
    assert {t["dropped"] for t in trace[1:]} <= {"text", "reward"}
    no_text = next(t for t in trace if t["dropped"] == "text")
    assert no_text["cv_ndcg@10"] < trace[0]["cv_ndcg@10"]
    # `groups` limits what is considered; fewer than 2 folds is refused
    assert select_groups(noisy, split.valid.targets, config, user_ids=split.valid.user_ids, groups=["behaviour"])[0] == ["behaviour"]
    with pytest.raises(InvalidInputError, match="2 folds"):
        select_groups(noisy, split.valid.targets, replace(config), user_ids=split.valid.user_ids, folds=1)


def test_compact_rounds_are_chosen_by_cv_over_user_folds(valid_data):
    """`compact_rounds=0`: the compact ranker's rounds come from the peak of a k-fold CV curve on
    its own training queries, and one choice can be fixed for several rankers (`with_cv_rounds`)."""
    from recsage.features.two_stage import fit_ranker, user_folds, with_cv_rounds
    from recsage.recmodels.ranker import LambdaRanker

    split, data = valid_data
    config = LambdaRankerConfig(compact_max_rounds=60, min_iterations=5)
    ranker = fit_ranker(data, split.valid.targets, data.names, config, user_ids=split.valid.user_ids)
    assert ranker.compact_ and len(ranker.cv_curve_) == 60
    assert 5 <= ranker.booster_.current_iteration() <= 60
    assert ranker.booster_.current_iteration() == 5 + int(np.argmax(ranker.cv_curve_[4:]))
    fixed = with_cv_rounds(data, split.valid.targets, data.names, config, user_ids=split.valid.user_ids)
    assert fixed.compact_rounds == ranker.booster_.current_iteration()  # same folds, same choice
    assert with_cv_rounds(data, split.valid.targets, data.names, fixed, user_ids=split.valid.user_ids) is fixed  # already fixed: unchanged
    folds = user_folds(np.array([7, 3, 7, 9, 3]), 2, seed=0)
    assert folds[0] == folds[2] and folds[1] == folds[4]  # one user, one fold
    with pytest.raises(InvalidInputError, match="query folds"):
        LambdaRanker(config).cv_rounds(np.zeros((4, 2), np.float32), np.array([1, 0, 1, 0.0]), np.array([2, 2]), np.array([0, 1, 0]))
