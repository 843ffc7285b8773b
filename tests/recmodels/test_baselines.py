import numpy as np
import pytest

from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.datasets import leave_one_out, load_dataset
from recsage.evaluation import evaluate
from recsage.recmodels import RECOMMENDERS


@pytest.fixture(scope="module")
def sci_split(shared_data):
    return leave_one_out(load_dataset("scientific", shared_data / "amazon-scientific"))


@pytest.mark.parametrize("name", ["popularity", "itemknn", "userknn", "ease"])
def test_recommend_never_returns_seen_or_invalid(name, sci_split):
    model = RECOMMENDERS.get(name)().fit(sci_split.train)
    q = sci_split.test.subset(np.arange(300))
    ids, scores = model.recommend(q.histories, k=20)
    assert ids.shape == (300, 20)
    for h, row in zip(q.histories, ids):
        assert not set(h.tolist()) & set(row.tolist())
        assert ((row >= 0) & (row < sci_split.n_items)).all()
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize("name", ["popularity", "itemknn", "userknn", "ease"])
def test_not_fitted_and_bad_history(name, sci_split):
    model = RECOMMENDERS.get(name)()
    with pytest.raises(NotFittedError):
        model.recommend([np.array([1])])
    model.fit(sci_split.train)
    with pytest.raises(InvalidInputError, match="not in the catalogue"):
        model.recommend([np.array([10**7])])


def test_collaborative_baselines_beat_popularity_and_round_trip(sci_split, tmp_path):
    from recsage.recmodels.saved import load_recommender

    res = {}
    hist = sci_split.valid.histories[:50]
    for name in ("popularity", "itemknn", "userknn", "ease"):
        model = RECOMMENDERS.get(name)().fit(sci_split.train)
        res[name] = evaluate(model, sci_split.valid, (10,), n_items=sci_split.n_items, progress=False)["ndcg@10"]
        if name in ("userknn", "ease"):
            back = load_recommender(model.save_pretrained(tmp_path / name))
            np.testing.assert_allclose(back.score(hist), model.score(hist), rtol=1e-6)
    assert res["itemknn"] > 2 * res["popularity"]
    assert min(res["userknn"], res["ease"]) > 2 * res["popularity"], res


def test_ease_refuses_a_catalogue_too_large_before_allocating(sci_split):
    from recsage.recmodels.ease import EASEConfig, EASERecommender

    with pytest.raises(InvalidInputError, match="max_items"):
        EASERecommender(EASEConfig(max_items=100)).fit(sci_split.train)


def test_unknown_recommender_lists_known_names():
    with pytest.raises(KeyError, match="unknown recommender 'tiger-xl'; known: ") as e:
        RECOMMENDERS.get("tiger-xl")
    known = str(e.value).split("known: ")[1]  # every registered model, whichever modules this session imported
    assert all(name in known for name in ("ease", "generative", "itemknn", "popularity", "sasrec", "userknn"))


def test_text_next_retriever_follows_the_transitions_not_the_similarity(tmp_path):
    """Synthetic: item i is always followed by item i+10 (their vectors unrelated), so "more like
    the last item" misses the next one and the mapped "what comes next" query finds it."""
    from recsage.datasets.splits import SequenceSet
    from recsage.recmodels.embedding_knn import EmbeddingKNNConfig, EmbeddingKNNRecommender
    from recsage.recmodels.saved import load_recommender

    rng = np.random.default_rng(0)
    n = 40
    vectors = rng.normal(size=(n, 64)).astype(np.float32)
    seqs = [np.array([i, i + 10, i + 20, i + 30]) for i in range(10) for _ in range(3)]
    train = SequenceSet(np.arange(len(seqs)), seqs, n)
    plain = EmbeddingKNNRecommender(vectors).fit(train)
    nxt = EmbeddingKNNRecommender(vectors, EmbeddingKNNConfig(predict_next=True)).fit(train)
    hist = [np.array([3])]
    assert plain.recommend(hist, k=1)[0][0, 0] != 13
    assert nxt.recommend(hist, k=1)[0][0, 0] == 13
    back = load_recommender(nxt.save_pretrained(tmp_path / "m"))
    np.testing.assert_allclose(back.score(hist), nxt.score(hist), rtol=1e-6)
