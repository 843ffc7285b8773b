"""DiffGRM: the fill-order-free SID index, on-policy coherent noising, denoising search, training on real Beauty."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recsage.core.errors import InvalidInputError
from recsage.recmodels.diffgrm import DiffGRMConfig, DiffGRMRecommender, SIDPatternIndex, denoise_search
from recsage.recmodels.saved import load_recommender
from recsage.tokenizers import SIDTable


def cfg(**kw):
    base = {"epochs": 2, "max_steps_per_epoch": 10, "batch_size": 64, "dim": 32, "n_decoder_layers": 1, "beam_size": 10, "valid_users": 50, "progress": False}
    return DiffGRMConfig(**{**base, **kw})


def unique_codes(rng, n_items, levels, size):
    codes = set()
    while len(codes) < n_items:
        codes.add(tuple(rng.integers(0, size, levels)))
    return np.array(sorted(codes))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), levels=st.integers(2, 4), size=st.integers(2, 6), filled_bits=st.integers(0, 15))
def test_pattern_index_allows_exactly_the_codes_of_real_items(seed, levels, size, filled_bits):
    rng = np.random.default_rng(seed)
    codes = unique_codes(rng, min(12, size ** levels), levels, size)
    index = SIDPatternIndex(codes, [size] * levels)
    filled = np.array([bool(filled_bits >> lv & 1) for lv in range(levels)])
    if filled.all():
        filled[-1] = False
    item = codes[rng.integers(len(codes))]
    got = index.mask(torch.from_numpy(item)[None], torch.from_numpy(filled)[None])[0].numpy()
    consistent = codes[(codes[:, filled] == item[filled]).all(1)]
    for p in range(levels):
        want = np.zeros(index.width, dtype=bool)
        if not filled[p]:
            want[np.unique(consistent[:, p])] = True
        assert np.array_equal(got[p], want)
    assert index.items(torch.from_numpy(codes)).tolist() == list(range(len(codes)))


def test_pattern_index_refuses_colliding_codes():
    with pytest.raises(InvalidInputError, match="colliding"):
        SIDPatternIndex(np.array([[0, 1], [0, 1]]), [2, 2])


def test_on_policy_noising_masks_the_least_confident_digits(small_split, sid_table):
    m = DiffGRMRecommender(sid_table, cfg(ocn_fraction=1.0))
    m._build(small_split.n_items)
    module = m.module_
    hist = torch.from_numpy(m._context_rows(small_split.test.histories[:64]))
    target = torch.from_numpy(sid_table.codes[small_split.test.targets[:64]])
    module.eval()
    with torch.no_grad():
        ctx, pad = module.encode(hist)
        masked = module.noise(ctx, pad, target)
        conf = module.denoise(ctx, pad, target, torch.ones_like(target, dtype=torch.bool)).amax(-1)
    assert (masked.sum(1) >= 1).all()
    for row in range(64):  # every masked digit is less confident than every filled one
        if (~masked[row]).any():
            assert conf[row][masked[row]].max() <= conf[row][~masked[row]].min()


def test_diffgrm_trains_and_decodes_only_real_items(small_split, sid_table, tmp_path):
    m = DiffGRMRecommender(sid_table, cfg(epochs=3)).fit(small_split.train)
    losses = [h["loss"] for h in m.train_result_.history]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    q = small_split.test.subset(np.arange(100))
    ids, scores = m.recommend(q.histories, k=10)
    for h, row, srow in zip(q.histories, ids, scores):
        valid = row[row >= 0]
        assert len(valid) >= 5 and len(set(valid.tolist())) == len(valid) and (valid < small_split.n_items).all()
        assert not set(h.tolist()) & set(valid.tolist())
        assert (np.diff(srow[: len(valid)]) <= 1e-6).all() and (srow[: len(valid)] <= 1e-6).all()
    back = load_recommender(m.save_pretrained(tmp_path / "d"))
    assert isinstance(back, DiffGRMRecommender)
    assert np.array_equal(back.recommend(q.histories[:20], k=10)[0], ids[:20])
    with pytest.raises(InvalidInputError, match="mismatched codebook"):
        DiffGRMRecommender(SIDTable(sid_table.codes[:100]), cfg()).fit(small_split.train)
    import json

    meta = json.loads((tmp_path / "d" / "config.json").read_text())
    (tmp_path / "d" / "config.json").write_text(json.dumps({**meta, "class": "generative"}))  # another architecture's folder
    with pytest.raises(InvalidInputError, match="expected a diffgrm model"):
        DiffGRMRecommender.from_pretrained(tmp_path / "d")


def test_denoise_search_never_emits_an_invalid_sid_even_untrained(sid_table, small_split):
    """Property: whatever the weights, every decoded SID is a real item's (fill order free)."""
    for seed in range(3):
        m = DiffGRMRecommender(sid_table, cfg(seed=seed, beam_size=16))
        m._build(small_split.n_items)
        m.module_.eval()
        rows = m._context_rows(small_split.test.histories[seed * 30 : seed * 30 + 30])
        with torch.no_grad():
            ctx, pad = m.module_.encode(torch.from_numpy(rows))
            items, scores = denoise_search(m.module_, ctx, pad, 16)
        live = np.isfinite(scores)
        assert live.all() and (items >= 0).all()
        assert all(len(set(r)) == len(r) for r in items.tolist())


def test_diffgrm_resume_reproduces_uninterrupted_run(small_split, sid_table, tmp_path):
    valid = small_split.valid.subset(np.arange(60))
    full = DiffGRMRecommender(sid_table, cfg(epochs=3), checkpoint_dir=str(tmp_path / "a")).fit(small_split.train, valid)
    DiffGRMRecommender(sid_table, cfg(epochs=2), checkpoint_dir=str(tmp_path / "b")).fit(small_split.train, valid)
    resumed = DiffGRMRecommender(sid_table, cfg(epochs=3), checkpoint_dir=str(tmp_path / "b")).fit(small_split.train, valid)
    assert resumed.train_result_.resumed_from == 1
    assert [h["valid"] for h in resumed.train_result_.history] == pytest.approx([h["valid"] for h in full.train_result_.history])


def test_diffgrm_config_is_checked(sid_table):
    with pytest.raises(InvalidInputError, match="ocn_fraction"):
        DiffGRMRecommender(sid_table, DiffGRMConfig(ocn_fraction=1.5))
