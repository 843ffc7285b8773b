"""SASRec and the generative SID recommender on real Beauty data, a few steps each."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.evaluation import evaluate
from recsage.recmodels import SASRec, SASRecConfig
from recsage.recmodels.generative import GenerativeConfig, GenerativeSIDRecommender

pytestmark = pytest.mark.slow


def sasrec_cfg(**kw):
    return SASRecConfig(**{"epochs": 2, "max_steps_per_epoch": 15, "batch_size": 128, "dim": 32, "progress": False, **kw})


def gen_cfg(arch, **kw):
    base = {"architecture": arch, "epochs": 2, "max_steps_per_epoch": 10, "batch_size": 64, "dim": 32, "n_encoder_layers": 1,
            "n_decoder_layers": 1, "beam_size": 10, "valid_users": 50, "progress": False}
    return GenerativeConfig(**{**base, **kw})


def test_sasrec_loss_decreases_and_recommends(small_split):
    m = SASRec(sasrec_cfg(epochs=3)).fit(small_split.train)
    losses = [h["loss"] for h in m.train_result_.history]
    assert losses[-1] < losses[0]
    q = small_split.test.subset(np.arange(200))
    ids, _ = m.recommend(q.histories, k=10)
    for h, row in zip(q.histories, ids):
        assert not set(h.tolist()) & set(row.tolist()) and (row >= 0).all()


def test_sasrec_sampled_softmax_trains_and_resumes_exactly(small_split, tmp_path):
    valid = small_split.valid.subset(np.arange(300))
    cfg = {"loss": "sampled", "negatives": 64, "negative_sampling": "mixed"}
    full = SASRec(sasrec_cfg(epochs=3, **cfg), checkpoint_dir=str(tmp_path / "a")).fit(small_split.train, valid)
    losses = [h["loss"] for h in full.train_result_.history]
    assert losses[-1] < losses[0]
    SASRec(sasrec_cfg(epochs=2, **cfg), checkpoint_dir=str(tmp_path / "b")).fit(small_split.train, valid)
    resumed = SASRec(sasrec_cfg(epochs=3, **cfg), checkpoint_dir=str(tmp_path / "b")).fit(small_split.train, valid)
    assert [h["valid"] for h in resumed.train_result_.history] == pytest.approx([h["valid"] for h in full.train_result_.history])


def test_sampled_softmax_masks_a_negative_equal_to_the_target():
    import torch

    from recsage.recmodels.layers import ItemEncoder
    from recsage.recmodels.sasrec import sampled_softmax_loss

    enc = ItemEncoder(1, 4)  # one item: every negative is the target itself
    h = torch.randn(5, 4)
    loss = sampled_softmax_loss(h, torch.zeros(5, dtype=torch.long), enc, negatives=3)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)  # only the target is left in each softmax
    mixed = sampled_softmax_loss(h, torch.zeros(5, dtype=torch.long), enc, negatives=4, popularity=torch.ones(1))
    assert mixed.item() == pytest.approx(0.0, abs=1e-6)  # logQ-corrected draws mask the same way
    with pytest.raises(InvalidInputError, match="loss"):
        SASRecConfig(loss="bpr")


def test_sasrec_cold_user_falls_back_to_popularity(small_split):
    m = SASRec(sasrec_cfg(epochs=1)).fit(small_split.train)
    ids, _ = m.recommend([np.array([], dtype=np.int64)], k=5)
    assert m.cold_fallbacks_ == 1
    assert ids[0].tolist() == np.argsort(-m.popularity_, kind="stable")[:5].tolist()


def test_sasrec_resume_reproduces_uninterrupted_run(small_split, tmp_path):
    valid = small_split.valid.subset(np.arange(300))
    full = SASRec(sasrec_cfg(epochs=3), checkpoint_dir=str(tmp_path / "a")).fit(small_split.train, valid)
    # "killed" after epoch 1: run 2 epochs, then resume the same checkpoint to 3
    SASRec(sasrec_cfg(epochs=2), checkpoint_dir=str(tmp_path / "b")).fit(small_split.train, valid)
    resumed = SASRec(sasrec_cfg(epochs=3), checkpoint_dir=str(tmp_path / "b")).fit(small_split.train, valid)
    assert resumed.train_result_.resumed_from == 1
    assert [h["valid"] for h in resumed.train_result_.history] == pytest.approx([h["valid"] for h in full.train_result_.history])
    q = small_split.test.subset(np.arange(300))
    a = evaluate(full, q, (10,), n_items=small_split.n_items, progress=False)
    b = evaluate(resumed, q, (10,), n_items=small_split.n_items, progress=False)
    assert a["ndcg@10"] == pytest.approx(b["ndcg@10"])


def test_sasrec_save_load_and_side_features(small_split, tmp_path, beauty):
    side = np.random.default_rng(0).standard_normal((beauty.n_items, 8)).astype(np.float32)  # synthetic features: shape test only
    m = SASRec(sasrec_cfg(epochs=1), side_features=side).fit(small_split.train)
    back = SASRec.from_pretrained(m.save_pretrained(tmp_path / "m"))
    q = small_split.test.histories[:20]
    assert np.array_equal(m.recommend(q, k=5)[0], back.recommend(q, k=5)[0])
    with pytest.raises(NotFittedError):
        SASRec().recommend(q)
    with pytest.raises(InvalidInputError, match="not a saved model"):
        SASRec.from_pretrained(tmp_path)


@pytest.mark.parametrize("arch", ["lazy", "encoder-decoder"])
def test_generative_trains_and_beam_output_is_always_valid(arch, small_split, sid_table):
    m = GenerativeSIDRecommender(sid_table, gen_cfg(arch, epochs=3)).fit(small_split.train)
    losses = [h["loss"] for h in m.train_result_.history]
    assert losses[-1] < losses[0]
    q = small_split.test.subset(np.arange(100))
    ids, scores = m.recommend(q.histories, k=10)
    assert ids.shape == (100, 10)
    for h, row, srow in zip(q.histories, ids, scores):
        valid = row[row >= 0]
        assert len(set(valid.tolist())) == len(valid) and ((valid >= 0) & (valid < small_split.n_items)).all()
        assert not set(h.tolist()) & set(valid.tolist())
        assert (np.diff(srow[: len(valid)]) <= 1e-9).all()


def test_generative_trie_softmax_trains_with_label_smoothing(small_split, sid_table):
    m = GenerativeSIDRecommender(sid_table, gen_cfg("lazy", epochs=3, trie_softmax=True, label_smoothing=0.1, history_dropout=0.1)).fit(small_split.train)
    losses = [h["loss"] for h in m.train_result_.history]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    ids, scores = m.recommend(small_split.test.histories[:50], k=10)
    found = ids >= 0  # a beam item the user has seen is dropped (-1 pads)
    assert found.mean() > 0.9 and (ids[found] < small_split.n_items).all() and (scores[found] <= 1e-9).all()  # log-probs of real items


def test_generative_resume_reproduces_uninterrupted_run(small_split, sid_table, tmp_path):
    valid = small_split.valid.subset(np.arange(100))
    full = GenerativeSIDRecommender(sid_table, gen_cfg("lazy", epochs=3), checkpoint_dir=str(tmp_path / "a")).fit(small_split.train, valid)
    GenerativeSIDRecommender(sid_table, gen_cfg("lazy", epochs=2), checkpoint_dir=str(tmp_path / "b")).fit(small_split.train, valid)
    resumed = GenerativeSIDRecommender(sid_table, gen_cfg("lazy", epochs=3), checkpoint_dir=str(tmp_path / "b")).fit(small_split.train, valid)
    assert resumed.train_result_.resumed_from == 1
    assert [h["valid"] for h in resumed.train_result_.history] == pytest.approx([h["valid"] for h in full.train_result_.history])
    q = small_split.test.histories[:50]
    assert np.array_equal(full.recommend(q, k=10)[0], resumed.recommend(q, k=10)[0])


def test_generative_save_load_and_mismatched_codebook(small_split, sid_table, tmp_path):
    m = GenerativeSIDRecommender(sid_table, gen_cfg("lazy", epochs=1)).fit(small_split.train)
    back = GenerativeSIDRecommender.from_pretrained(m.save_pretrained(tmp_path / "g"))
    q = small_split.test.histories[:10]
    assert np.array_equal(m.recommend(q, k=5)[0], back.recommend(q, k=5)[0])
    # a cold user (empty history) gets the most popular items, counted as a fallback — also after loading
    ids, _ = back.recommend([np.array([], dtype=np.int64)], k=5)
    assert back.cold_fallbacks_ == 1 and ids[0].tolist() == np.argsort(-m.popularity_, kind="stable")[:5].tolist()
    from recsage.tokenizers import SIDTable

    wrong = SIDTable(sid_table.codes[:100])
    with pytest.raises(InvalidInputError, match="mismatched codebook"):
        GenerativeSIDRecommender(wrong, gen_cfg("lazy")).fit(small_split.train)


def test_torchrun_ddp_two_cpu_processes(tmp_path, shared_data):
    script = Path(__file__).parent / "_ddp_train.py"
    data = shared_data / "amazon-scientific"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533", str(script), str(tmp_path), str(data)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "done-rank0").exists() and (tmp_path / "done-rank1").exists()
    assert (tmp_path / "ckpt" / "last.pt").exists()


def test_cli_train_under_torchrun(tmp_path):
    """`torchrun -m recsage.cli train …`: two gloo ranks train, rank 0 alone evaluates and saves."""
    import os

    from recsage.pipelines import prepare_dataset
    from recsage.pipelines.demo import bundled_data_dir

    prepare_dataset("scientific", bundled_data_dir() / "scientific-sample", tmp_path / "sci")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29534", "-m", "recsage.cli", "train", "sasrec",
                        "--data", str(tmp_path / "sci"), "--out", str(tmp_path / "run"), "--set", "epochs=2", "--set", "dim=16", "--set", "progress=false"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("saved") == 1  # rank 0 alone reports and saves
    assert (tmp_path / "run" / "model" / "config.json").exists() and (tmp_path / "run" / "checkpoints" / "last.pt").exists()
