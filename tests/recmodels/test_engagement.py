"""LCU stage 2: the engagement model (DCN + field attention, WLR + correction, two auxiliary
ranking heads) and its metrics, on synthetic inputs (unit-test data only) and on real Reddit
comment sections."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from recsage.evaluation.engagement import auc, list_ranking_metrics, xauc
from recsage.recmodels.engagement import EngagementConfig, EngagementInputs, EngagementModel, list_mle, reply_softmax_loss


def synthetic_inputs(n: int = 600, k: int = 4, seed: int = 0) -> EngagementInputs:
    """Synthetic: engagement grows with id field 0; the most upvoted comment has text dim 0 high."""
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(1, 6, n), rng.integers(1, 4, n)], 1)
    eng = ids[:, 0] * 2.0 + rng.exponential(1.0, n)
    ctext = rng.normal(size=(n * k, 8)).astype(np.float32)
    cidx = np.arange(n * k).reshape(n, k)
    up = ctext[cidx, 0] * 5
    return EngagementInputs(
        id_fields=ids, id_sizes=[6, 4], slot_ids=rng.integers(1, 3, (n, k, 1)), slot_sizes=[3], mask=np.ones((n, k), bool),
        item_index=rng.integers(0, 10, n), comment_index=cidx, engagement=eng, long=eng > np.quantile(eng, 0.7),
        replied=(rng.random((n, k)) < 0.2).astype(np.float32), upvotes=up.astype(np.float32),
        item_text=rng.normal(size=(10, 8)).astype(np.float32), comment_text=ctext, comment_labels=rng.random((n * k, 5)).astype(np.float32))


def test_list_mle_matches_the_plackett_luce_likelihood() -> None:
    s = torch.tensor([[0.3, 1.2, -0.5, 0.0]])
    v = torch.tensor([[2.0, 5.0, 1.0, 9.0]])
    mask = torch.tensor([[True, True, True, False]])
    order = [1, 0, 2]  # by value, the masked slot left out
    expect = 0.0
    for i in range(len(order)):
        rest = s[0, order[i:]]
        expect += float(torch.logsumexp(rest, 0) - s[0, order[i]])
    assert float(list_mle(s, v, mask)) == pytest.approx(expect, rel=1e-5)


def test_reply_softmax_loss_is_the_cross_entropy_over_real_slots() -> None:
    s = torch.tensor([[0.3, 1.2, -0.5, 9.0], [1.0, 2.0, 3.0, 4.0]])
    rep = torch.tensor([[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # the second list has no reply: left out
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    logp = torch.log_softmax(s[0, :3], 0)
    assert float(reply_softmax_loss(s, rep, mask)) == pytest.approx(float(-(logp[1] + logp[2]) / 2), rel=1e-5)
    assert float(reply_softmax_loss(s, torch.zeros_like(rep), mask)) == 0.0


def test_metrics_on_known_cases() -> None:
    assert auc(np.array([0.1, 0.9, 0.5]), np.array([0, 1, 1])) == 1.0
    assert xauc(np.arange(50.0), np.arange(50.0) * 3) == 1.0 and xauc(-np.arange(50.0), np.arange(50.0)) == 0.0
    m = list_ranking_metrics(np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]]), np.array([[1.0, 0, 0], [1.0, 0, 0]]), np.ones((2, 3), bool))
    assert m["ndcg@1"] == 0.5 and m["mrr"] == pytest.approx((1 + 1 / 3) / 2) and m["lists"] == 2


@pytest.mark.parametrize("aux_user,aux_popular", list(itertools.product([0.0, 0.5], [0.0, 0.5])))
def test_trains_with_each_auxiliary_head(aux_user, aux_popular) -> None:
    data = synthetic_inputs()
    train, valid = data.subset(np.arange(500)), data.subset(np.arange(500, 600))
    cfg = EngagementConfig(epochs=2, batch_size=128, lambda_user=aux_user, lambda_popular=aux_popular, use_labels=aux_user > 0)
    model = EngagementModel(cfg).fit(train, valid)
    out = model.predict(valid)
    assert out["engagement"].shape == (100,) and np.isfinite(out["engagement"]).all() and (out["engagement"] >= 0).all()
    assert out["user_scores"].shape == (100, 4) and len(model.history_) == 2
    losses = model.history_[0]
    assert ("loss_user" in losses) == (aux_user > 0) and ("loss_popular" in losses) == (aux_popular > 0)


def test_learns_the_signal_and_round_trips(tmp_path) -> None:
    data = synthetic_inputs(n=1500)
    train, test = data.subset(np.arange(1200)), data.subset(np.arange(1200, 1500))
    model = EngagementModel(EngagementConfig(epochs=6, batch_size=128, lambda_popular=1.0, seed=1)).fit(train, test)
    out = model.predict(test)
    assert auc(out["engagement"], test.long) > 0.75  # engagement follows id field 0
    pop = list_ranking_metrics(out["popular_scores"], test.upvotes - test.upvotes.min(), test.mask)
    assert pop["ndcg@1"] > 0.5  # the popular head reads text dim 0
    model.save_pretrained(tmp_path / "m", sizes={"id_sizes": data.id_sizes, "slot_sizes": data.slot_sizes, "text_dim": 8, "label_dim": 5})
    again = EngagementModel.from_pretrained(tmp_path / "m")
    assert np.allclose(again.predict(test)["engagement"], out["engagement"], rtol=1e-5)


def test_ranking_heads_learn_recency_at_lcus_small_weights() -> None:
    """λ1 = .001, λ2 = .1 (LCU's defaults): the heads still learn what their own slot tables see.
    Synthetic: users reply to the newest visible comment; the oldest has the most upvotes."""
    data = synthetic_inputs(n=1500)
    k = data.mask.shape[1]
    data.replied = np.zeros_like(data.replied)
    data.replied[:, k - 1] = 1.0
    data.upvotes = np.tile(np.arange(k, 0, -1, dtype=np.float32), (len(data), 1))
    train, test = data.subset(np.arange(1200)), data.subset(np.arange(1200, 1500))
    for user_loss in ("bce", "softmax"):
        model = EngagementModel(EngagementConfig(epochs=4, batch_size=128, seed=0, user_loss=user_loss)).fit(train, test)
        out = model.predict(test)
        assert list_ranking_metrics(out["user_scores"], test.replied, test.mask)["ndcg@1"] > 0.95, user_loss
        assert list_ranking_metrics(out["popular_scores"], test.upvotes, test.mask)["ndcg@1"] > 0.95


def test_patience_stops_after_epochs_without_a_better_valid_auc() -> None:
    data = synthetic_inputs()
    train, valid = data.subset(np.arange(500)), data.subset(np.arange(500, 600))
    model = EngagementModel(EngagementConfig(epochs=12, batch_size=128, lr=3e-2, patience=1, use_labels=False)).fit(train, valid)
    aucs = [h["valid_auc"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmax(aucs)) + 1
    assert len(aucs) == 12 or len(aucs) == model.best_epoch_ + 1  # stopped one epoch after the best


def test_a_killed_fit_resumes_and_matches_the_uninterrupted_run(tmp_path) -> None:
    from dataclasses import replace

    data = synthetic_inputs()
    train, valid = data.subset(np.arange(500)), data.subset(np.arange(500, 600))
    cfg = EngagementConfig(epochs=3, batch_size=128)
    full = EngagementModel(cfg).fit(train, valid)
    EngagementModel(replace(cfg, epochs=1), checkpoint_dir=str(tmp_path)).fit(train, valid)  # "killed" after its first epoch
    resumed = EngagementModel(cfg, checkpoint_dir=str(tmp_path)).fit(train, valid)
    assert resumed.train_result_.resumed_from == 0 and len(resumed.history_) == 3
    assert [h["valid_auc"] for h in resumed.history_] == [h["valid_auc"] for h in full.history_]
    assert np.allclose(resumed.predict(valid)["engagement"], full.predict(valid)["engagement"], rtol=1e-5)


def test_checkpoints_of_another_run_are_not_resumed(tmp_path) -> None:
    from recsage.pipelines.lcu import fresh_checkpoints

    d = fresh_checkpoints(tmp_path / "ck", {"config": {"lr": 1e-3}})
    (d / "last.pt").write_bytes(b"x")
    assert (fresh_checkpoints(tmp_path / "ck", {"config": {"lr": 1e-3}}) / "last.pt").exists()  # the same run resumes
    assert not (fresh_checkpoints(tmp_path / "ck", {"config": {"lr": 3e-4}}) / "last.pt").exists()  # another run starts fresh


def test_missing_tables_are_clear_errors() -> None:
    from recsage.core.errors import InvalidInputError

    data = synthetic_inputs(n=50)
    data.comment_labels = None
    with pytest.raises(InvalidInputError, match="comment labels"):
        EngagementModel(EngagementConfig(epochs=1)).fit(data)
    with pytest.raises(InvalidInputError, match="user_loss"):
        EngagementModel(EngagementConfig(epochs=1, user_loss="hinge")).fit(data)


def test_real_reddit_sections_train_a_few_steps(shared_data) -> None:
    """IDs-only engagement model on real comment sections (no text: fast), with both aux heads."""
    from recsage.datasets.comment_sections import SectionConfig
    from recsage.pipelines.lcu import load_sections, ranking_baselines, train_engagement
    from recsage.recmodels.engagement_inputs import engagement_inputs

    sections = load_sections(shared_data / "reddit-college-comments", config=SectionConfig(max_threads=1500))
    inputs = engagement_inputs(sections)
    model, metrics = train_engagement(sections, inputs, EngagementConfig(use_text=False, use_labels=False, epochs=1, lambda_user=0.5))
    for split in ("valid", "test"):
        assert 0.0 <= metrics[split]["auc"] <= 1.0 and metrics[split]["rmse"] > 0 and "user_ndcg@1" in metrics[split] and "popular_mrr" in metrics[split]
    base = ranking_baselines(inputs.subset(sections.rows("test")))
    assert set(base) == {"newest first", "oldest first"}
