"""Generative Semantic-ID recommenders: history → the next item's SID, token by token.

Two architectures behind one estimator:
- `encoder-decoder` (TIGER): the history is flattened to SID tokens (items × levels) and read by a
  transformer encoder; a transformer decoder emits the target's codes.
- `lazy` (OneRec-V2 style): a light context encoder — one vector per history item (sum of its SID
  token embeddings + id embedding + position), no self-attention — and the computation is spent
  in the decoder, which cross-attends to that context. Far cheaper on long histories.
Decoding is `constrained_beam_search` over a `SIDPrefixIndex`, so only real items come out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recsage.core.config import ConfigMixin, read_saved_meta
from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.evaluation import evaluate
from recsage.recmodels.base import check_histories, register_recommender, validation_sample
from recsage.recmodels.decoding import constrained_beam_search
from recsage.recmodels.layers import ItemEncoder
from recsage.recmodels.trainer import Trainer, TrainerConfig, TrainResult
from recsage.tokenizers.prefix_index import SIDPrefixIndex
from recsage.tokenizers.sid_table import SIDTable

FORMAT_VERSION = 1
ARCHITECTURES = ("encoder-decoder", "lazy")


@dataclass(frozen=True)
class GenerativeConfig(ConfigMixin):
    architecture: str = "lazy"  # encoder-decoder (TIGER) or lazy (one context vector per history item)
    max_items: int = 20  # history items the model reads
    dim: int = 128  # model width
    n_encoder_layers: int = 4  # encoder-decoder only
    n_decoder_layers: int = 4  # decoder transformer layers
    n_heads: int = 4  # attention heads
    ff_mult: int = 4  # feed-forward width as a multiple of dim
    dropout: float = 0.2  # dropout everywhere in the network
    use_item_ids: bool = True  # lazy context adds an id embedding to each history item's SID embedding
    batch_size: int = 256  # training samples per optimiser step
    epochs: int = 30  # passes over the training data (early stopping may end sooner)
    lr: float = 1e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.01  # AdamW weight decay
    history_dropout: float = 0.0  # training only: each history item except the newest is hidden with this probability
    label_smoothing: float = 0.0  # on each level's code distribution; SIDs of similar items share prefixes
    # softmax over the trie: each level's distribution covers only the codes that continue the
    # target's prefix to a real item, in training and in beam search (scores = item log-probs).
    # On Beauty it is part of the recipe that reaches TIGER's numbers (README); coverage@10 .16 → .8.
    trie_softmax: bool = True
    patience: int = 4  # epochs without validation gain before stopping
    beam_size: int = 20  # beam width when decoding (items beyond it count as misses)
    valid_users: int | None = 2000  # validation subsample for early stopping (beam search is costly)
    seed: int = 0  # seeds weights, batch order and dropout
    max_steps_per_epoch: int | None = None  # cap on optimiser steps per epoch (None: the whole epoch)
    max_train_seconds: float | None = None  # wall-clock cap on training (also --max-minutes); a run it stops says so
    lr_schedule: str = "constant"  # or "cosine": decays over `epochs` (set epochs to what the budget allows)
    warmup_steps: int = 0  # linear learning-rate warm-up steps
    progress: bool = True  # progress bars


@dataclass(frozen=True)
class DecodePlan:
    """What the decoder emits, step by step: step j's codes are model tokens
    `offsets[j] .. offsets[j] + sizes[j]`, its input token sits at position embedding
    `positions[j]`, and the first `n_free` steps lie outside the SID trie (thought tokens); the
    rest are the SID levels. The plain model's plan is just the SID levels after BOS."""

    bos: int
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    positions: tuple[int, ...]
    n_free: int = 0


class SIDVocab:
    """Level l code c ↔ model token 1 + offset[l] + c (0 is padding, last id is BOS)."""

    def __init__(self, level_sizes: list[int]) -> None:
        self.level_sizes = list(level_sizes)
        self.offsets = np.concatenate([[0], np.cumsum(level_sizes)[:-1]]).astype(np.int64) + 1
        self.bos = int(sum(level_sizes)) + 1
        self.size = self.bos + 1

    def tokens(self, codes: np.ndarray) -> np.ndarray:
        return codes + self.offsets[None, :]


class GenerativeModule(nn.Module):
    def __init__(self, n_items: int, codes: np.ndarray, config: GenerativeConfig, side_features: np.ndarray | None = None,
                 trie: list[np.ndarray] | None = None) -> None:
        super().__init__()
        c = config
        self.config = c
        self.vocab = SIDVocab([int(codes[:, lv].max()) + 1 for lv in range(codes.shape[1])])
        self.n_levels = codes.shape[1]
        self.register_buffer("item_tokens", torch.from_numpy(np.concatenate([np.zeros((1, self.n_levels), np.int64), self.vocab.tokens(codes)])))
        self.token = nn.Embedding(self.vocab.size, c.dim, padding_idx=0)
        nn.init.normal_(self.token.weight, std=0.02)
        self.item_pos = nn.Embedding(c.max_items, c.dim)
        self.level = nn.Embedding(self.n_levels + 1, c.dim)
        self.items = ItemEncoder(n_items, c.dim, side_features) if (c.use_item_ids or side_features is not None) else None
        if c.architecture == "encoder-decoder":
            layer = nn.TransformerEncoderLayer(c.dim, c.n_heads, c.dim * c.ff_mult, c.dropout, batch_first=True, norm_first=True, activation="gelu")
            self.encoder = nn.TransformerEncoder(layer, c.n_encoder_layers, enable_nested_tensor=False)
        else:
            self.encoder = None
        self.context_norm = nn.LayerNorm(c.dim)
        dlayer = nn.TransformerDecoderLayer(c.dim, c.n_heads, c.dim * c.ff_mult, c.dropout, batch_first=True, norm_first=True, activation="gelu")
        self.decoder = nn.TransformerDecoder(dlayer, c.n_decoder_layers)
        self.out_norm = nn.LayerNorm(c.dim)
        self.dropout = nn.Dropout(c.dropout)
        if c.trie_softmax:  # buffers trie_<level>: SIDPrefixIndex.children (prefix id × code → next id, -1 = no item)
            if trie is None:
                raise ValueError("trie_softmax needs the SID trie")
            for lv, t in enumerate(trie):  # rebuilt from the codebook, not saved with the weights
                self.register_buffer(f"trie_{lv}", torch.from_numpy(np.asarray(t, dtype=np.int64)), persistent=False)

    def encode(self, hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hist: (B, max_items) shifted item ids (0 = pad) → context (B, T, dim), pad mask (B, T)."""
        b, n = hist.shape
        toks = self.item_tokens[hist]  # (B, n, L)
        pos = self.item_pos(torch.arange(n, device=hist.device))[None]
        if self.encoder is None:  # lazy: one vector per item
            # the item's SID token embeddings summed by one fused op (cheaper to back-propagate on CPU than gather + sum)
            ctx = nn.functional.embedding_bag(toks.reshape(b * n, -1), self.token.weight, mode="sum", padding_idx=0).view(b, n, -1) + pos
            if self.items is not None:
                ctx = ctx + self.items(hist)
            pad = hist == 0
        else:  # TIGER: every SID token is a position
            lv = self.level(torch.arange(1, self.n_levels + 1, device=hist.device))[None, None]
            ctx = self.token(toks) + lv + pos[:, :, None]  # (B, n, L, dim)
            if self.items is not None:  # side information / item ids: the same hook as the lazy model, on each of the item's tokens
                ctx = ctx + self.items(hist)[:, :, None]
            ctx = ctx.reshape(b, n * self.n_levels, -1)
            pad = (toks == 0).reshape(b, n * self.n_levels)
        # a fully empty history still needs one key to attend to: unmask the last slot
        pad[:, -1] = False
        if self.encoder is not None:  # padding is zeroed (as in SASRec) and neither attends nor is attended to
            keep = (~pad).unsqueeze(-1).to(ctx.dtype)
            ctx = self.encoder(self.dropout(ctx) * keep, src_key_padding_mask=pad)
        return self.context_norm(self.dropout(ctx)), pad

    def plan(self) -> DecodePlan:
        return DecodePlan(self.vocab.bos, tuple(int(o) for o in self.vocab.offsets), tuple(self.vocab.level_sizes), tuple(range(self.n_levels)))

    def decode(self, ctx: torch.Tensor, ctx_pad: torch.Tensor, prefix_tokens: torch.Tensor, plan: DecodePlan | None = None) -> torch.Tensor:
        """prefix_tokens (B, l) model tokens of the codes so far → hidden states (B, l + 1, dim);
        the last one predicts the next step."""
        plan = plan or self.plan()
        b, l = prefix_tokens.shape
        bos = torch.full((b, 1), plan.bos, dtype=torch.long, device=ctx.device)
        inp = torch.cat([bos, prefix_tokens], 1)
        x = self.token(inp) + self.level(torch.tensor(plan.positions[: l + 1], device=ctx.device))[None]
        causal = torch.triu(torch.full((l + 1, l + 1), float("-inf"), device=ctx.device), diagonal=1)
        h = self.decoder(self.dropout(x), ctx, tgt_mask=causal, memory_key_padding_mask=ctx_pad)
        return self.out_norm(h)

    def decode_codes(self, ctx: torch.Tensor, ctx_pad: torch.Tensor, codes: torch.Tensor, plan: DecodePlan) -> torch.Tensor:
        """Teacher forcing: codes (B, steps) of every step → hidden state of each step (B, steps, dim)."""
        tokens = codes + torch.tensor(plan.offsets, device=codes.device)[None]
        return self.decode(ctx, ctx_pad, tokens[:, :-1], plan)

    def step_logits(self, h: torch.Tensor, plan: DecodePlan, step: int) -> torch.Tensor:
        lo = plan.offsets[step]
        return h @ self.token.weight[lo : lo + plan.sizes[step]].T

    def level_logits(self, h: torch.Tensor, level: int) -> torch.Tensor:
        lo = int(self.vocab.offsets[level])
        return h @ self.token.weight[lo : lo + self.vocab.level_sizes[level]].T

    def sid_nll(self, h: torch.Tensor, target_codes: torch.Tensor) -> torch.Tensor:
        """Mean over levels of the target SID's negative log-likelihood; h (B, L, dim) are the
        hidden states that predict levels 0..L-1 (trie softmax and label smoothing per config)."""
        ls = self.config.label_smoothing
        if not self.config.trie_softmax:
            return sum(nn.functional.cross_entropy(self.level_logits(h[:, lv], lv), target_codes[:, lv], label_smoothing=ls)
                       for lv in range(self.n_levels)) / self.n_levels
        total = h.new_zeros(())
        pid = torch.zeros(len(target_codes), dtype=torch.long, device=h.device)
        for lv in range(self.n_levels):
            child = getattr(self, f"trie_{lv}")[pid]  # (B, codes): where the target's prefix may go
            valid = child >= 0
            logp = torch.log_softmax(self.level_logits(h[:, lv], lv).masked_fill(~valid, float("-inf")), -1)
            nll = -logp.gather(1, target_codes[:, lv : lv + 1]).squeeze(1)
            if ls:  # smoothing over the valid codes only (masked ones have no probability to give)
                nll = (1 - ls) * nll - ls * logp.masked_fill(~valid, 0).sum(1) / valid.sum(1)
            total = total + nll.mean()
            pid = child.gather(1, target_codes[:, lv : lv + 1]).squeeze(1)
        return total / self.n_levels

    def thin_history(self, hist: torch.Tensor) -> torch.Tensor:
        """Training augmentation: the same target from a thinned history (newest item always kept)."""
        if self.training and self.config.history_dropout:
            drop = torch.rand(hist.shape, device=hist.device) < self.config.history_dropout
            drop[:, -1] = False
            hist = hist.masked_fill(drop, 0)
        return hist

    def forward(self, hist: torch.Tensor, target_codes: torch.Tensor) -> torch.Tensor:
        """Training loss (mean CE over levels); `forward` so DDP wraps it."""
        ctx, pad = self.encode(self.thin_history(hist))
        return self.sid_nll(self.decode_codes(ctx, pad, target_codes, self.plan()), target_codes)  # step l predicts level l


class IncrementalBeamDecoder:
    """Inference-only decoding for beam search, equal to `GenerativeModule.decode` in eval mode.

    Two caches make it cheap: the context's cross-attention keys/values are projected once per
    query (not once per beam and level), and each layer's self-attention keys/values of a beam's
    prefix are kept, so a level only runs its one new token through the layers (a KV cache).
    The beam search only hands over (query ids, prefixes); a new beam finds its parent's cache
    row by matching (query, prefix without its last code) against the previous call's rows.
    """

    def __init__(self, module: GenerativeModule, ctx: torch.Tensor, ctx_pad: torch.Tensor, plan: DecodePlan | None = None) -> None:
        self.m = module
        self.plan = plan or module.plan()
        c = module.config
        self.d, self.nh = c.dim, c.n_heads
        self.memory = []
        for layer in module.decoder.layers:
            w, bias = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k = nn.functional.linear(ctx, w[self.d : 2 * self.d], bias[self.d : 2 * self.d])
            v = nn.functional.linear(ctx, w[2 * self.d :], bias[2 * self.d :])
            self.memory.append((self._heads(k), self._heads(v)))  # (Q, H, T, dh)
        self.mask = torch.zeros(ctx_pad.shape, dtype=ctx.dtype).masked_fill(ctx_pad, float("-inf"))[:, None, None, :]
        self.cache: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.rows = np.zeros((0, 1), dtype=np.int64)  # (query, prefix...) of the cached beams

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(t.shape[0], t.shape[1], self.nh, self.d // self.nh).transpose(1, 2)

    @staticmethod
    def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # plain matmul-softmax: several times faster than CPU SDPA for these tiny query counts
        s = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        return torch.softmax(s if mask is None else s + mask, -1) @ v

    def _parents(self, q: np.ndarray, prefixes: np.ndarray) -> np.ndarray:
        want = np.concatenate([q[:, None], prefixes[:, :-1]], 1)
        _, inv = np.unique(np.concatenate([self.rows, want]), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        slot = np.full(inv.max() + 1, -1)
        slot[inv[: len(self.rows)]] = np.arange(len(self.rows))
        parent = slot[inv[len(self.rows) :]]
        if (parent < 0).any():
            raise RuntimeError("a beam's prefix was not decoded at the previous level (steps must follow the beam search)")
        return parent

    def step(self, q: np.ndarray, prefixes: np.ndarray) -> torch.Tensor:
        """Hidden state for the next level of every (query, prefix) row: (rows, dim)."""
        m, level = self.m, prefixes.shape[1]
        if level == 0:
            tok = torch.full((len(q),), self.plan.bos, dtype=torch.long)
            parent = None
        else:
            parent = torch.from_numpy(self._parents(q, prefixes))
            tok = torch.from_numpy(prefixes[:, -1] + self.plan.offsets[level - 1])
        x = (m.token(tok) + m.level.weight[self.plan.positions[level]])[:, None]  # (rows, 1, dim)
        counts = np.bincount(q)
        grid = bool((np.diff(q) >= 0).all() and (counts[counts > 0] == counts.max()).all())
        qs = torch.from_numpy(np.unique(q) if grid else q)
        new_cache = []
        for i, layer in enumerate(m.decoder.layers):
            sa = layer.self_attn
            qkv = nn.functional.linear(layer.norm1(x), sa.in_proj_weight, sa.in_proj_bias)
            qh, kh, vh = (self._heads(t) for t in qkv.split(self.d, -1))  # (rows, H, 1, dh)
            if parent is not None:
                kh = torch.cat([self.cache[i][0][parent], kh], 2)
                vh = torch.cat([self.cache[i][1][parent], vh], 2)
            new_cache.append((kh, vh))
            o = self._attend(qh, kh, vh)  # the newest token may see the whole prefix: causal by construction
            x = x + sa.out_proj(o.transpose(1, 2).reshape(len(q), 1, self.d))
            ca = layer.multihead_attn
            qc = nn.functional.linear(layer.norm2(x), ca.in_proj_weight[: self.d], ca.in_proj_bias[: self.d])
            mk, mv = self.memory[i]
            if grid:  # the beams of one query share its keys/values: (Q, H, beams, dh) against (Q, H, T, dh)
                qc = qc.view(len(qs), -1, self.nh, self.d // self.nh).transpose(1, 2)
                o = self._attend(qc, mk[qs], mv[qs], self.mask[qs]).transpose(1, 2).reshape(len(q), 1, self.d)
            else:
                o = self._attend(self._heads(qc), mk[qs], mv[qs], self.mask[qs]).transpose(1, 2).reshape(len(q), 1, self.d)
            x = x + ca.out_proj(o)
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        self.cache = new_cache
        self.rows = np.concatenate([q[:, None], prefixes], 1)
        if m.decoder.norm is not None:
            x = m.decoder.norm(x)
        return m.out_norm(x[:, 0])


def history_samples(sequences: list[np.ndarray], max_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliding-window augmentation: every position t >= 1 of every training sequence is a sample
    (history = up to `max_items` items before it, right-aligned, shifted by +1)."""
    hs, ts = [], []
    for s in sequences:
        s = np.asarray(s)
        for t in range(1, len(s)):
            h = s[max(0, t - max_items) : t] + 1
            row = np.zeros(max_items, dtype=np.int64)
            row[-len(h):] = h
            hs.append(row)
            ts.append(s[t])
    if not hs:
        raise InvalidInputError("no training samples: sequences need at least two items", field="train")
    return np.stack(hs), np.asarray(ts, dtype=np.int64)


def first_occurrences(items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's items de-duplicated in order (beams that reach one item by different thoughts
    keep their best score), the freed tail padded with -1 / -inf."""
    out_i, out_s = np.full_like(items, -1), np.full_like(scores, -np.inf)
    for r in range(len(items)):
        valid = items[r] >= 0
        _, first = np.unique(items[r][valid], return_index=True)
        keep = np.sort(first)
        out_i[r, : len(keep)] = items[r][valid][keep]
        out_s[r, : len(keep)] = scores[r][valid][keep]
    return out_i, out_s


@register_recommender("generative")
class GenerativeSIDRecommender:
    """`recommend` returns the beam's valid, de-duplicated items in score order (PROTOCOLS.md)."""

    def __init__(self, sid_table: SIDTable, config: GenerativeConfig | None = None, *, side_features: np.ndarray | None = None,
                 checkpoint_dir: str | None = None) -> None:
        self.sid_table = sid_table
        self.config = config or GenerativeConfig()
        if self.config.architecture not in ARCHITECTURES:
            raise InvalidInputError(f"unknown architecture {self.config.architecture!r}; known: {', '.join(ARCHITECTURES)}", field="architecture")
        self.side_features = side_features
        self.checkpoint_dir = checkpoint_dir

    def _build(self, n_items: int) -> None:
        if self.sid_table.n_items != n_items:
            raise InvalidInputError(f"SID table has {self.sid_table.n_items} items, the data has {n_items}: mismatched codebook", field="sid")
        torch.manual_seed(self.config.seed)
        self.index_ = SIDPrefixIndex(self.sid_table)
        self.module_ = self._make_module(n_items)
        self.n_items_ = n_items

    def _make_module(self, n_items: int) -> GenerativeModule:
        return GenerativeModule(n_items, self.sid_table.codes, self.config, self.side_features, trie=self.index_.children)

    def fit(self, train: SequenceSet, valid: QuerySet | None = None, *, exclude_seen: bool = True) -> GenerativeSIDRecommender:
        c = self.config
        self._build(train.n_items)
        tensors = self._training_tensors(*history_samples(train.sequences, c.max_items))
        self.popularity_ = np.bincount(np.concatenate(train.sequences), minlength=train.n_items).astype(np.float64)

        def batches(epoch: int):
            order = np.random.default_rng([c.seed, epoch]).permutation(len(tensors[0]))
            for lo in range(0, len(order), c.batch_size):
                idx = torch.from_numpy(order[lo : lo + c.batch_size])
                yield tuple(t[idx] for t in tensors)

        def loss(model: nn.Module, batch) -> torch.Tensor:
            return model(*batch)

        vq = validation_sample(valid, c.valid_users, c.seed)

        def validate() -> float:
            return evaluate(self, vq, (10,), n_items=self.n_items_, exclude_seen=exclude_seen, progress=False, batch_size=256)["ndcg@10"]

        trainer = Trainer(self.module_, TrainerConfig(epochs=c.epochs, lr=c.lr, weight_decay=c.weight_decay, patience=c.patience, seed=c.seed,
                                                      max_steps_per_epoch=c.max_steps_per_epoch, progress=c.progress, checkpoint_dir=self.checkpoint_dir,
                          max_seconds=c.max_train_seconds, schedule=c.lr_schedule, warmup_steps=c.warmup_steps),
                          batches=batches, loss=loss, validate=validate if valid is not None else None)
        self.train_result_: TrainResult = trainer.fit()
        return self

    def _training_tensors(self, hist: np.ndarray, targets: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The module's `forward` arguments for every training sample (history rows, target codes)."""
        return torch.from_numpy(hist), torch.from_numpy(self.sid_table.codes[targets])

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError("GenerativeSIDRecommender is not fitted; call fit() first")

    def recommend(self, histories, k: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        hist = check_histories(histories, self.n_items_)
        beam = max(self.config.beam_size, k)  # items beyond the beam count as misses (PROTOCOLS.md)
        self.module_.eval()
        rows = self._context_rows(hist)
        with torch.no_grad():
            items, scores = self._beam_items(hist, rows, beam)
        if exclude_seen:
            for i, h in enumerate(hist):
                seen = np.isin(items[i], h)
                if seen.any():
                    keep_i, keep_s = items[i][~seen], scores[i][~seen]
                    items[i] = -1
                    scores[i] = -np.inf
                    items[i, : len(keep_i)] = keep_i
                    scores[i, : len(keep_s)] = keep_s
        cold = np.array([len(h) == 0 for h in hist])
        self.cold_fallbacks_ = int(cold.sum())
        if cold.any():  # no history to condition on: the most popular items, and say so (cold_fallbacks_)
            top = np.argsort(-self.popularity_, kind="stable")[: items.shape[1]]
            items[cold], scores[cold] = -1, -np.inf
            items[cold, : len(top)] = top
            scores[cold, : len(top)] = self.popularity_[top] / max(self.popularity_.max(), 1.0)
        out_i, out_s = items[:, :k], scores[:, :k]
        if k > out_i.shape[1]:  # fewer beam items than k: the rest are misses (-1)
            out_i = np.pad(out_i, ((0, 0), (0, k - out_i.shape[1])), constant_values=-1)
            out_s = np.pad(out_s, ((0, 0), (0, k - out_s.shape[1])), constant_values=-np.inf)
        return out_i, out_s

    def _context_rows(self, histories: list[np.ndarray]) -> np.ndarray:
        """The encoder's input: each history's newest `max_items` items, shifted by +1 and right-aligned (0 = pad)."""
        rows = np.zeros((len(histories), self.config.max_items), dtype=np.int64)
        for i, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64)[-self.config.max_items :] + 1
            if len(h):
                rows[i, -len(h):] = h
        return rows

    def _beam_items(self, histories: list[np.ndarray], rows: np.ndarray, beam: int) -> tuple[np.ndarray, np.ndarray]:
        """(items, scores) of the beam for context rows (queries × max_items shifted ids), best first."""
        return self._search(self.module_.encode(torch.from_numpy(rows)), self.module_.plan(), beam)

    def _search(self, context: tuple[torch.Tensor, torch.Tensor], plan: DecodePlan, beam: int,
                forced: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Beam search along `plan`; `forced` (queries × steps, -1 = free) pins a query's code at a
        free step (a thought derived from the history instead of generated)."""
        m = self.module_
        decoder = IncrementalBeamDecoder(m, *context, plan)

        def step(q: np.ndarray, prefixes: np.ndarray) -> np.ndarray:
            j = prefixes.shape[1]
            logp = torch.log_softmax(m.step_logits(decoder.step(q, prefixes), plan, j), -1).numpy()
            if forced is not None and j < forced.shape[1]:
                pin = forced[q, j]
                rows = np.flatnonzero(pin >= 0)
                keep = logp[rows, pin[rows]]
                logp[rows] = -np.inf
                logp[rows, pin[rows]] = keep
            return logp

        items, scores = constrained_beam_search(step, self.index_, len(context[0]), beam_size=beam, k=beam, renormalize=self.config.trie_softmax,
                                                free_levels=plan.sizes[: plan.n_free])
        # without thought steps every beam is a distinct trie leaf, so a distinct item: nothing to merge
        return first_occurrences(items, scores) if plan.n_free else (items, scores)

    def _saved_meta(self) -> dict[str, Any]:
        return {"class": "generative", "format_version": FORMAT_VERSION, "n_items": self.n_items_, "params": self.config.to_dict()}

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.module_.state_dict().items()}
        state["popularity"] = torch.from_numpy(self.popularity_)
        save_file(state, str(d / "model.safetensors"))
        self.sid_table.save(d / "sid")
        (d / "config.json").write_text(json.dumps(self._saved_meta(), indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> GenerativeSIDRecommender:
        d = Path(directory)
        meta = read_saved_meta(d, "generative", FORMAT_VERSION)
        return cls._restore(d, meta, lambda table, side: cls(table, GenerativeConfig.from_dict(meta["params"]), side_features=side))

    @staticmethod
    def _restore(d: Path, meta: dict[str, Any], make) -> Any:
        """Weights, codebook and popularity of a saved folder into `make(sid_table, side_features)`."""
        from safetensors.torch import load_file

        table = SIDTable.load(d / "sid")
        state = load_file(str(d / "model.safetensors"))
        popularity = state.pop("popularity", None)
        side = state.get("items.side")
        obj = make(table, None if side is None else side[1:].numpy())
        obj._build(meta["n_items"])
        try:
            obj.module_.load_state_dict(state)
        except RuntimeError as e:
            raise InvalidInputError(f"checkpoint does not match its codebook/config: {str(e)[:200]}", file=str(d)) from None
        obj.popularity_ = popularity.numpy() if popularity is not None else np.ones(obj.n_items_)
        obj.module_.eval()
        return obj
