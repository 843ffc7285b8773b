"""Every quantizer: real items, shapes, determinism, save/load, not-fitted and bad-input errors."""

import numpy as np
import pytest

from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.tokenizers import codebook_report, make_quantizer
from recsage.tokenizers.base import Quantizer

SMALL = {"rqkmeans": {}, "balanced": {"balance_iter": 2}, "rqvae": {"epochs": 15}, "parallel": {}}


@pytest.mark.parametrize("method", ["rqkmeans", "balanced", "rqvae", "parallel"])
def test_fits_real_items(method, sci_text_vectors, tmp_path):
    q = make_quantizer(method, n_levels=2, n_codes=32, **SMALL[method])
    codes = q.fit_transform(sci_text_vectors)
    assert codes.shape == (600, 2) and codes.min() >= 0 and codes.max() < 32
    rep = codebook_report(codes, n_codes=32, vectors=sci_text_vectors, reconstruction=q.reconstruct(codes), text_vectors=sci_text_vectors)
    assert rep["levels"][0]["utilisation"] > 0.5
    assert 0 < rep["reconstruction_error"] < 1.0
    assert rep["semantic_consistency"] > 0.2  # nearest text neighbours often share the first code
    back = Quantizer.from_pretrained(q.save_pretrained(tmp_path / method))
    assert np.array_equal(back.transform(sci_text_vectors), codes)


@pytest.mark.parametrize("method", ["rqkmeans", "balanced", "rqvae", "parallel"])
def test_deterministic_under_seed(method, synthetic_vectors):
    a = make_quantizer(method, n_levels=2, n_codes=8, seed=3, **SMALL[method]).fit_transform(synthetic_vectors)
    b = make_quantizer(method, n_levels=2, n_codes=8, seed=3, **SMALL[method]).fit_transform(synthetic_vectors)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("method", ["rqkmeans", "balanced", "rqvae", "parallel"])
def test_errors(method, synthetic_vectors):
    q = make_quantizer(method, n_levels=2, n_codes=8, **SMALL[method])
    with pytest.raises(NotFittedError):
        q.transform(synthetic_vectors)
    with pytest.raises(InvalidInputError, match="empty item set"):
        q.fit(np.zeros((0, 16), dtype=np.float32))
    bad = synthetic_vectors.copy()
    bad[7, 3] = np.nan
    with pytest.raises(InvalidInputError, match="row 7"):
        q.fit(bad)
    with pytest.raises(InvalidInputError, match="codes per level but only 5 items"):
        make_quantizer(method, n_levels=2, n_codes=8).fit(synthetic_vectors[:5])


def test_balanced_is_balanced(sci_text_vectors):
    codes = make_quantizer("balanced", n_levels=2, n_codes=32).fit_transform(sci_text_vectors)
    counts = np.bincount(codes[:, 0], minlength=32)
    assert counts.max() <= int(np.ceil(600 / 32))
    plain = make_quantizer("rqkmeans", n_levels=2, n_codes=32).fit_transform(sci_text_vectors)
    assert np.bincount(plain[:, 0]).max() > counts.max()


def test_balanced_leaf_capacity_removes_collisions(sci_text_vectors):
    """The last level is balanced inside each prefix, so collisions before dedup (nearly) vanish —
    even for items with identical text (catalogue variants), here each real item twice."""
    from recsage.tokenizers import collision_rate

    x = np.concatenate([sci_text_vectors[:300], sci_text_vectors[:300]])
    balanced = make_quantizer("balanced", n_levels=2, n_codes=32, balance_iter=1).fit_transform(x)
    global_only = make_quantizer("balanced", n_levels=2, n_codes=32, balance_iter=1, leaf_capacity=0).fit_transform(x)
    assert np.array_equal(balanced[:, 0], global_only[:, 0])  # only the leaf level changes
    assert collision_rate(global_only) > 0.05
    assert collision_rate(balanced) <= 0.01


def test_unknown_method():
    with pytest.raises(KeyError, match="known: balanced, parallel, rqkmeans, rqvae"):
        make_quantizer("vq-gan")


def test_parallel_digits_are_balanced_and_decoupled(sci_text_vectors):
    """DiffGRM's Parallel Semantic Encoding: each digit holds a similar share of the variance, and a
    digit's code does not depend on the others (its own k-means over its own components)."""
    from recsage.tokenizers.parallel import ParallelSemanticTokenizer

    q = make_quantizer("parallel", n_levels=3, n_codes=16)
    codes = q.fit_transform(sci_text_vectors)
    share = q.digit_variance_ / q.digit_variance_.sum()
    assert share.max() - share.min() < 0.1
    assert sorted(np.concatenate(q.groups_).tolist()) == sorted(set(np.concatenate(q.groups_).tolist()))  # no component twice
    rq = make_quantizer("rqkmeans", n_levels=3, n_codes=16).fit(sci_text_vectors)
    # residual digits: the first carries most of the explained variance; parallel digits share it
    first = np.var(rq.codebooks_[0][rq.transform(sci_text_vectors)[:, 0]], axis=0).sum()
    last = np.var(rq.codebooks_[2][rq.transform(sci_text_vectors)[:, 2]], axis=0).sum()
    assert first > 2 * last
    assert isinstance(q, ParallelSemanticTokenizer) and codes.shape == (600, 3)
