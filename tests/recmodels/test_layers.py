"""The causal encoder's padding mask: left padding must not change what real positions compute."""

import numpy as np
import torch

from recsage.recmodels.layers import CausalEncoder, left_pad, trim_padding


def _unpadded(enc: CausalEncoder, x: torch.Tensor, start: int) -> torch.Tensor:
    """The same sequence without its padding, at the same absolute positions."""
    n = x.shape[1]
    h = x[:, start:] + enc.position(torch.arange(start, n))[None]
    m = n - start
    causal = torch.zeros(m, m).masked_fill(torch.ones(m, m, dtype=torch.bool).triu(1), float("-inf"))
    return enc.norm(enc.layers(h, mask=causal))


def test_masked_padding_is_invisible_to_real_positions():
    torch.manual_seed(0)
    enc = CausalEncoder(16, 2, 2, 8, 0.0, mask_padding=True).eval()
    x = torch.randn(2, 8, 16)
    pad = torch.zeros(2, 8, dtype=torch.bool)
    pad[0, :5] = True  # 3 real items
    pad[1, :1] = True  # 7 real items
    with torch.no_grad():
        out = enc(x, pad)
        assert torch.isfinite(out).all()
        assert torch.allclose(out[0, 5:], _unpadded(enc, x[:1], 5)[0], atol=1e-5)
        assert torch.allclose(out[1, 1:], _unpadded(enc, x[1:], 1)[0], atol=1e-5)
        assert (out[0, :5] == 0).all()


def test_unmasked_padding_leaks_into_real_positions():
    """The old behaviour, kept for old checkpoints: padded keys take attention weight."""
    torch.manual_seed(0)
    enc = CausalEncoder(16, 2, 2, 8, 0.0, mask_padding=False).eval()
    x = torch.randn(1, 8, 16)
    pad = torch.zeros(1, 8, dtype=torch.bool)
    pad[0, :5] = True
    with torch.no_grad():
        assert not torch.allclose(enc(x, pad)[0, 5:], _unpadded(enc, x, 5)[0], atol=1e-4)


def test_trimming_all_padding_columns_changes_nothing():
    torch.manual_seed(0)
    enc = CausalEncoder(16, 2, 2, 10, 0.0, mask_padding=True).eval()
    items = torch.nn.Embedding(30, 16, padding_idx=0)
    ids = left_pad([np.array([3, 4, 5]), np.array([7, 8, 9, 10, 11, 12])], 10)
    (trimmed,) = trim_padding(ids)
    assert trimmed.shape == (2, 6)
    with torch.no_grad():
        full, short = enc(items(ids), ids == 0), enc(items(trimmed), trimmed == 0)
    assert torch.allclose(full[:, -6:], short, atol=1e-5)


def test_fast_dropout_keeps_the_expectation_and_is_seeded():
    from recsage.recmodels.layers import FastDropout

    drop = FastDropout(0.3).train()
    x = torch.ones(200_000)
    torch.manual_seed(1)
    a = drop(x)
    torch.manual_seed(1)
    assert torch.equal(a, drop(x))
    assert abs((a == 0).float().mean().item() - drop.p) < 0.01
    assert abs(a.mean().item() - 1.0) < 0.01
    assert torch.equal(drop.eval()(x), x)


def test_zero_initialised_side_projection_starts_as_the_id_model_and_learns():
    """With side_init="zero" an encoder given side features computes exactly the id embedding at
    the start, and the projection still receives a gradient (features are learned in)."""
    from recsage.recmodels.layers import ItemEncoder

    side = np.random.default_rng(0).integers(0, 2, (10, 6)).astype(np.float32)  # synthetic multi-hot tags
    torch.manual_seed(0)
    plain = ItemEncoder(10, 8)
    torch.manual_seed(0)
    zero = ItemEncoder(10, 8, side, side_init="zero")
    ids = torch.tensor([[0, 3, 5, 9]])
    assert torch.equal(plain(ids), zero(ids))
    zero(ids).pow(2).sum().backward()
    assert zero.side_proj.weight.grad.abs().sum() > 0
    torch.manual_seed(0)
    default = ItemEncoder(10, 8, side)
    assert not torch.equal(plain(ids), default(ids))
