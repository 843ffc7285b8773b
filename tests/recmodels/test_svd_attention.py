"""SOLAR's SVD-attention: exact on low-rank inputs, gradients, the drop-in into SASRec, training on real data."""

import numpy as np
import pytest
import torch

from recsage.core.errors import InvalidInputError
from recsage.datasets import leave_one_out, load_dataset
from recsage.recmodels import SASRec, SASRecConfig
from recsage.recmodels.sasrec import SASRecModule
from recsage.recmodels.svd_attention import full_attention, landmarks, svd_attention


def low_rank_qkv(m=3, n=60, d=16, distinct=6, seed=0, dtype=torch.float64):
    """A sequence made of `distinct` behaviours repeated (so exp(QKᵀ) has rank ≤ distinct), projected
    into queries, keys and values as an attention layer does."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(m, distinct, d, generator=g, dtype=dtype)
    which = torch.randint(0, distinct, (m, n), generator=g)
    x = base[torch.arange(m)[:, None], which]
    wq, wk, wv = (torch.randn(d, d, generator=g, dtype=dtype) / d ** 0.5 for _ in range(3))
    return x @ wq, x @ wk, x @ wv


def left_padding(m, n, lengths):
    pad = torch.zeros(m, n, dtype=torch.bool)
    for i, length in enumerate(lengths):
        pad[i, : n - length] = True
    return pad


@pytest.mark.parametrize("causal", [True, False])
def test_exact_on_low_rank_inputs(causal):
    q, k, v = low_rank_qkv()
    pad = left_padding(3, 60, [60, 45, 12])
    got = svd_attention(q, k, v, pad, rank=6, causal=causal)
    want = full_attention(q, k, v, pad, causal=causal)
    assert torch.allclose(got, want, atol=1e-9)
    # and the reference agrees with torch's own kernel where no padding is involved
    sdpa = torch.nn.functional.scaled_dot_product_attention(q[:1], k[:1], v[:1], is_causal=causal)
    assert torch.allclose(full_attention(q[:1], k[:1], v[:1], causal=causal), sdpa, atol=1e-9)


@pytest.mark.parametrize("local", [4, 16])
def test_exact_recent_window_keeps_exactness_and_covers_short_sequences(local):
    q, k, v = low_rank_qkv()
    pad = left_padding(3, 60, [60, 45, 12])
    assert torch.allclose(svd_attention(q, k, v, pad, rank=6, local=local), full_attention(q, k, v, pad), atol=1e-9)
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(2, 30, 8, generator=g, dtype=torch.float64) for _ in range(3))
    pad = left_padding(2, 30, [30, 20])
    exact = svd_attention(q, k, v, pad, rank=4, local=15)  # own + previous block of 15 cover all 30 positions
    assert torch.allclose(exact, full_attention(q, k, v, pad), atol=1e-9)
    near = (svd_attention(q, k, v, pad, rank=4, local=8) - full_attention(q, k, v, pad)).abs().mean()
    far = (svd_attention(q, k, v, pad, rank=4) - full_attention(q, k, v, pad)).abs().mean()
    assert near < far  # the exact window only removes error


def test_landmarks_pick_each_distinct_behaviour_once():
    q, k, v = low_rank_qkv(distinct=5)
    idx, factors, live = landmarks(k, torch.ones(3, 60, dtype=torch.bool), 7, 0.25)
    assert live[:, :5].all() and not live[:, 5:].any()  # two more pivots than behaviours: dead
    for row in range(3):
        assert len({tuple(k[row, j].tolist()) for j in idx[row, :5].tolist()}) == 5
    gauss = torch.exp(-0.125 * torch.cdist(k, k) ** 2)
    assert torch.allclose(factors @ factors.transpose(1, 2), gauss, atol=1e-8)  # the factorisation is exact


def test_exact_when_rank_covers_the_sequence():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 24, 8, generator=g, dtype=torch.float64) for _ in range(3))
    assert torch.allclose(svd_attention(q, k, v, rank=24), full_attention(q, k, v), atol=1e-7)


def test_approximation_is_a_convex_mix_of_visible_values():
    """On full-rank inputs the skeleton is approximate, but every weight stays ≥ 0: each output is a
    weighted mean of values the position may see (no future, no padding)."""
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 40, 8, generator=g) for _ in range(3))
    pad = left_padding(2, 40, [40, 25])
    out = svd_attention(q, k, v, pad, rank=8)
    assert torch.isfinite(out).all()
    for row in range(2):
        for i in range(40):
            seen = v[row, : i + 1][~pad[row, : i + 1]]
            if len(seen) == 0:
                assert (out[row, i] == 0).all()
                continue
            assert (out[row, i] >= seen.min(0).values - 1e-4).all() and (out[row, i] <= seen.max(0).values + 1e-4).all()


def test_gradient_check():
    """Analytic gradients equal finite differences: for queries and values on low-rank inputs (the
    landmark mix is then constant), for values on any input (the output is linear in them)."""
    q, k, v = (t[:, :16].clone() for t in low_rank_qkv(m=2, distinct=4, seed=5))
    pad = left_padding(2, 16, [16, 11])
    assert torch.autograd.gradcheck(lambda a, c: svd_attention(a, k, c, pad, rank=4), (q.requires_grad_(), v.requires_grad_()))
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 16, 6, generator=g, dtype=torch.float64) for _ in range(3))
    assert torch.autograd.gradcheck(lambda c: svd_attention(q, k, c, pad, rank=5), (v.requires_grad_(),))


def test_gradients_match_full_attention_on_low_rank_inputs():
    """d/dq and d/dv keep the input on the low-rank manifold, so they equal full attention's. (d/dk
    leaves it: a key nudged off its copy is no longer exactly represented, and the landmark mix is
    held constant in the backward pass.)"""
    q, k, v = (t[:, :20].clone().requires_grad_() for t in low_rank_qkv(m=2, distinct=4, seed=3))
    pad = left_padding(2, 20, [20, 14])
    w = torch.randn(2, 20, 16, dtype=torch.float64)
    gs = torch.autograd.grad((svd_attention(q, k, v, pad, rank=4) * w).sum(), (q, v))
    gf = torch.autograd.grad((full_attention(q, k, v, pad) * w).sum(), (q, v))
    for a, b in zip(gs, gf):
        assert torch.allclose(a, b, atol=1e-8)


def test_drop_in_loads_a_full_attention_sasrec():
    """Same parameter names: a full-attention SASRec's weights load into the SVD-attention encoder,
    and with a rank that covers the window it computes the same hidden states (r ≥ N: nothing to
    compress); with a smaller rank it runs and stays finite."""
    torch.manual_seed(0)
    full = SASRecModule(50, SASRecConfig(dim=16, max_len=12, dropout=0.0))
    svd = SASRecModule(50, SASRecConfig(dim=16, max_len=12, dropout=0.0, attention="svd", attention_rank=12))
    svd.load_state_dict(full.state_dict())
    ids = torch.tensor([[0, 0, 0, 4, 9, 4, 17, 3, 3, 8, 1, 2], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]])
    full.eval(), svd.eval()
    with torch.no_grad():
        keep = ids != 0
        assert torch.allclose(full(ids)[keep], svd(ids)[keep], atol=1e-5)
        small = SASRecModule(50, SASRecConfig(dim=16, max_len=12, dropout=0.0, attention="svd", attention_rank=4))
        small.load_state_dict(full.state_dict())
        small.eval()
        assert torch.isfinite(small(ids)).all()


def test_config_refuses_unknown_attention():
    with pytest.raises(InvalidInputError, match="attention"):
        SASRecConfig(attention="linear")
    with pytest.raises(InvalidInputError, match="attention_rank"):
        SASRecConfig(attention_rank=0)
    with pytest.raises(InvalidInputError, match="attention_local"):
        SASRecConfig(attention_local=-1)


def test_sasrec_with_svd_attention_trains_on_movielens(shared_data, tmp_path):
    ds = load_dataset("movielens-100k", shared_data / "movielens-100k")
    sp = leave_one_out(ds)
    cfg = SASRecConfig(attention="svd", attention_rank=16, attention_local=16, max_len=200, dim=32, epochs=3, max_steps_per_epoch=8, batch_size=64, progress=False)
    m = SASRec(cfg).fit(sp.train)
    losses = [h["loss"] for h in m.train_result_.history]
    assert losses[-1] < losses[0]
    m.save_pretrained(tmp_path / "m")
    again = SASRec.from_pretrained(tmp_path / "m")
    assert again.config.attention == "svd"
    hist = sp.test.histories[:20]
    np.testing.assert_allclose(again.score(hist), m.score(hist), rtol=1e-4, atol=1e-5)
