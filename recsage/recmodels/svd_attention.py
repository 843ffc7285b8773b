"""SVD-attention: causal softmax attention in O(N·d·r) through a rank-r factorisation of the keys' kernel.

SOLAR (Zhang et al., 2026, "SVD-Optimized Lifelong Attention for Recommendation") replaces the
O(N²·d) attention over a long behaviour sequence by a low-rank operator that keeps the softmax and
is lossless when the matrices are low-rank. The paper's code is not public; this module is our
reading of that contract, stated precisely so it can be tested:

* exp(q·k/√d) = exp(|q|²/2√d) · exp(|k|²/2√d) · g(q, k) with g the Gaussian kernel
  exp(−|q−k|²/2√d). A rank-r factorisation of the *keys'* Gaussian kernel — pivoted Cholesky, the
  greedy rank-revealing factorisation (a truncated SVD's cheap cousin: each pivot is the key the
  chosen ones explain worst) — gives r landmark keys J and, for every key j, weights T_·j with
  g(·, k_j) ≈ Σ_c T_cj g(·, k_c). So every softmax weight is a mix of r landmark weights:
  exp(q_i·k_j/√d) ≈ Σ_c exp(q_i·k_c/√d − |k_c|²/2√d) · T_cj · exp(|k_j|²/2√d). The N × N kernel is
  never formed.
* Exactness: a key that copies a landmark has T_·j one-hot, so on a history of at most r distinct
  behaviours (repeated plays, re-purchases: what lifelong sequences are made of) the output equals
  full softmax attention, causal mask and padding included. With r ≥ N nothing is compressed and
  full attention is computed.
* Softmax preserved: each output row is Σ_j w_ij v_j / Σ_j w_ij over the row's visible keys, the
  weights' own normaliser (not a kernel feature map's). Negative mix weights are cut, so every
  weight is ≥ 0 and an output is always a convex mix of visible values.
* Causality by prefix sums over blocks (`causal_mix`): every position sees only its past,
  O(N·r·d) time and memory. `local` > 0 attends exactly to the newest one-to-two blocks.

Weights are scaled by a per-row maximum before exp (it cancels in the softmax), so long sequences
neither overflow nor underflow.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def landmarks(x: torch.Tensor, valid: torch.Tensor, rank: int, scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pivoted Cholesky of the Gaussian kernel exp(−|x−y|²·scale/2) over (M, N, d) points.

    Returns the (M, rank) pivot indices, the (M, N, rank) factor L (kernel ≈ L Lᵀ) and which pivots
    are live (M, rank): once the chosen points explain every valid point, further pivots are dead
    (their factor column is 0). Invalid points are never pivots of a live step."""
    m, n, _ = x.shape
    rows = torch.arange(m, device=x.device)
    with torch.no_grad():
        xs = x.detach()
        residual = valid.to(xs.dtype).clone()  # the kernel's diagonal is 1 for every valid point
        factors = xs.new_zeros(m, n, rank)
        chosen = torch.zeros(m, rank, dtype=torch.long, device=x.device)
        live = torch.zeros(m, rank, dtype=torch.bool, device=x.device)
        for t in range(rank):
            best, pivot = residual.max(dim=1)
            live[:, t] = best > 1e-6
            if t:  # nothing left to explain: repeat the last pivot (dead)
                pivot = torch.where(live[:, t], pivot, chosen[:, t - 1])
            chosen[:, t] = pivot
            col = torch.exp(-0.5 * scale * (xs - xs[rows, pivot][:, None]).pow(2).sum(-1)) * valid
            if t:
                col = col - (factors[:, :, :t] * factors[rows, pivot, :t][:, None, :]).sum(-1)
            factors[:, :, t] = torch.where(live[:, t, None], col / best.clamp_min(1e-6).sqrt()[:, None], 0.0)
            residual = (residual - factors[:, :, t] ** 2).clamp_min(0) * valid
    return chosen, factors, live


def key_mix(factors: torch.Tensor, chosen: torch.Tensor, live: torch.Tensor) -> torch.Tensor:
    """(M, r, N) weights T with g(·, k_j) ≈ Σ_c T_cj g(·, k_c): Nyström interpolation
    K_JJ⁻¹ K_Jj = L_J⁻ᵀ L_jᵀ through the triangular pivot block (dead pivots give zero rows)."""
    m, r = chosen.shape
    rows = torch.arange(m, device=chosen.device)[:, None]
    block = factors[rows, chosen]  # (M, r, r) lower-triangular in pivot order
    block = torch.where(live[:, :, None] & live[:, None, :], block, 0.0) + torch.diag_embed((~live).to(block.dtype))
    return torch.linalg.solve_triangular(block.transpose(1, 2), factors.transpose(1, 2), upper=True) * live[..., None]


def svd_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pad_mask: torch.Tensor | None = None, *, rank: int = 32,
                  causal: bool = True, chunk: int = 64, local: int = 0) -> torch.Tensor:
    """(M, N, d) queries, keys, values (M = batch · heads) → (M, N, d) outputs.

    `pad_mask` (M, N) marks padding keys (never attended to). A position with no visible key (a
    left-padding row) gets a zero output, as the encoder zeroes padding rows anyway.

    `local` > 0 (causal only): each position attends exactly to the keys of its own block of
    `local` positions and of the block before (the most recent `local` … 2·`local` − 1 behaviours),
    and through the landmarks to everything older — exact where recency matters most, O(N·local·d)
    more work. Both parts share one softmax normaliser."""
    m, n, d = q.shape
    scale = 1.0 / math.sqrt(d)
    valid = torch.ones(m, n, dtype=torch.bool, device=q.device) if pad_mask is None else ~pad_mask
    if rank >= n:  # nothing to compress
        return full_attention(q, k, v, pad_mask, causal=causal)
    rows = torch.arange(m, device=q.device)[:, None]
    chosen, factors, live = landmarks(k, valid, rank, scale)
    landmark_keys = k[rows, chosen]  # (M, r, d)
    # The mix is held constant in the backward pass (an interpolation through a triangular solve):
    # on low-rank inputs it is one-hot whatever the weights, so gradients reach queries, landmark
    # keys and values exactly as full attention's do.
    with torch.no_grad():
        half_norm = 0.5 * scale * k.detach().pow(2).sum(-1).masked_fill(~valid, float("-inf"))  # (M, N)
        top_norm = half_norm.amax(-1, keepdim=True).clamp_min(-1e30)
        mix = key_mix(factors, chosen, live).clamp_min(0) * torch.exp(half_norm - top_norm)[:, None, :]  # (M, r, N)
    # per landmark: exp(q·k_c/√d − |k_c|²/2√d), shifted by the largest |k_j|²/2√d (folded out of the mix). The
    # norm term is a constant for the backward pass, as the mix's is: differentiating only one side of
    # the |k|² pair pulled every landmark key toward 0 (a trained SASRec peaked at epoch 1, then decayed)
    half_landmark = 0.5 * scale * landmark_keys.detach().pow(2).sum(-1)[:, None, :]
    c_logits = (q @ landmark_keys.transpose(1, 2)) * scale - half_landmark + top_norm[..., None]
    c_logits = c_logits.masked_fill(~live[:, None, :], float("-inf"))
    values = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)  # the last column sums the weights
    if causal and local:
        mixed = local_and_far(q * scale, k, values, valid, c_logits, mix, local)
    else:
        c = torch.exp(c_logits - c_logits.amax(dim=2, keepdim=True).detach().clamp_min(-1e30))
        mixed = causal_mix(c, mix, values, chunk) if causal else c @ (mix @ values)
    numerator, normaliser = mixed[..., :-1], mixed[..., -1:]
    seen = normaliser > 1e-30
    return torch.where(seen, numerator / torch.where(seen, normaliser, 1.0), 0.0)


def causal_mix(c: torch.Tensor, mix: torch.Tensor, values: torch.Tensor, chunk: int) -> torch.Tensor:
    """Σ_{j ≤ i} (c_i · mix_j) values_j for every i, block by block (as chunked linear attention):
    inside a block of `chunk` positions the (chunk × chunk) weights are formed and masked; across
    blocks, r × d running sums carry the past. O(N·chunk·r + N·r·d) time, O(N·chunk + N/chunk·r·d) memory."""
    m, n, _ = c.shape
    cb, vb = _blocks(c, chunk), _blocks(values, chunk)
    tb = _mix_blocks(mix, chunk)  # (M, nb, r, chunk)
    nb = cb.shape[1]
    inside = (cb @ tb).tril()  # (M, nb, chunk, chunk): j ≤ i within the block
    sums = tb @ vb  # (M, nb, r, d+1): each block's contribution to every later block
    before = torch.cumsum(sums, dim=1) - sums  # exclusive prefix over blocks
    out = inside @ vb + cb @ before
    return out.reshape(m, nb * chunk, -1)[:, :n]


def _blocks(t: torch.Tensor, block: int) -> torch.Tensor:
    """(M, N, …) → (M, nb, block, …), zero-padded at the end: padding has no weight and no value."""
    m, n = t.shape[:2]
    nb = -(-n // block)
    if nb * block > n:
        t = nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, nb * block - n))
    return t.reshape(m, nb, block, *t.shape[2:])


def _mix_blocks(mix: torch.Tensor, block: int) -> torch.Tensor:
    """The (M, r, N) key mix → (M, nb, r, block), zero-padded like `_blocks`."""
    return _blocks(mix.transpose(1, 2), block).transpose(2, 3)


def _previous_block(t: torch.Tensor) -> torch.Tensor:
    """(M, nb, …) → the same shifted one block later (block 0 gets zeros / False)."""
    return torch.cat([torch.zeros_like(t[:, :1]), t[:, :-1]], 1)


def local_and_far(q: torch.Tensor, k: torch.Tensor, values: torch.Tensor, valid: torch.Tensor, c_logits: torch.Tensor, mix: torch.Tensor,
                  block: int) -> torch.Tensor:
    """Causal Σ_j w_ij values_j with exact softmax weights for keys in the query's own and previous
    block and skeleton weights (exp(c_logits) · mix) for older blocks, all scaled by one per-row
    maximum. `q` is pre-scaled by 1/√d."""
    m, n, _ = c_logits.shape
    qb, kb, vb, ok = _blocks(q, block), _blocks(k, block), _blocks(values, block), _blocks(valid, block)
    nb = qb.shape[1]
    keys, vals = torch.cat([_previous_block(kb), kb], 2), torch.cat([_previous_block(vb), vb], 2)  # (M, nb, 2·block, ·)
    seen = torch.cat([_previous_block(ok), ok], 2)
    ii = torch.arange(block, device=q.device)[:, None]
    jj = torch.arange(2 * block, device=q.device)[None]
    allowed = (jj <= ii + block)[None, None] & seen[:, :, None, :]  # causal within the window, padding hidden
    near_logits = (qb @ keys.transpose(-1, -2)).masked_fill(~allowed, float("-inf"))  # (M, nb, block, 2·block)
    cb = _blocks(c_logits, block)
    top = torch.maximum(near_logits.amax(-1), cb.amax(-1)).detach().clamp_min(-1e30)[..., None]
    near = torch.exp(near_logits - top) @ vals
    tb = _mix_blocks(mix, block)  # (M, nb, r, block)
    sums = tb @ vb  # (M, nb, r, d+1)
    older = torch.cumsum(sums, dim=1) - sums - _previous_block(sums)  # blocks ≤ b − 2
    out = near + torch.exp(cb - top) @ older
    return out.reshape(m, nb * block, -1)[:, :n]


def full_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pad_mask: torch.Tensor | None = None, *, causal: bool = True) -> torch.Tensor:
    """The O(N²) reference with the same conventions as `svd_attention` (padding keys hidden,
    rows with no visible key give zeros)."""
    m, n, d = q.shape
    blocked = torch.zeros(m, n, n, dtype=torch.bool, device=q.device)
    if causal:
        blocked = blocked | torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)[None]
    if pad_mask is not None:
        blocked = blocked | pad_mask[:, None, :]
    logits = (q @ k.transpose(1, 2)) / math.sqrt(d)
    logits = logits.masked_fill(blocked, float("-inf"))
    weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # a fully blocked row: zeros
    return weights @ v


class AttentionEncoderLayer(nn.Module):
    """A pre-norm transformer block whose self-attention is a plain function (full or SVD).

    Parameter names are those of `nn.TransformerEncoderLayer` (self_attn.in_proj_weight, linear1,
    norm1, …), so a SASRec trained with full attention loads into it unchanged — the drop-in."""

    def __init__(self, dim: int, n_heads: int, dropout: float, *, attention: str = "svd", rank: int = 32, local: int = 0,
                 dropout_layer=nn.Dropout) -> None:
        super().__init__()
        if attention not in ("svd", "full"):
            raise ValueError(f"attention must be 'full' or 'svd', got {attention!r}")
        self.n_heads, self.attention, self.rank, self.local = n_heads, attention, rank, local
        self.self_attn = nn.MultiheadAttention(dim, n_heads, dropout=0.0, batch_first=True)  # parameters only
        self.linear1, self.linear2 = nn.Linear(dim, dim * 4), nn.Linear(dim * 4, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout, self.dropout1, self.dropout2 = dropout_layer(dropout), dropout_layer(dropout), dropout_layer(dropout)

    def _attend(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        b, n, dim = x.shape
        h = self.n_heads
        qkv = nn.functional.linear(x, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias)
        q, k, v = (t.reshape(b, n, h, dim // h).transpose(1, 2).reshape(b * h, n, dim // h) for t in qkv.chunk(3, dim=-1))
        mask = pad_mask.repeat_interleave(h, dim=0)
        out = svd_attention(q, k, v, mask, rank=self.rank, local=self.local) if self.attention == "svd" else full_attention(q, k, v, mask)
        out = out.reshape(b, h, n, dim // h).transpose(1, 2).reshape(b, n, dim)
        return self.self_attn.out_proj(out)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout1(self._attend(self.norm1(x), pad_mask))
        return x + self.dropout2(self.linear2(self.dropout(nn.functional.gelu(self.linear1(self.norm2(x))))))
