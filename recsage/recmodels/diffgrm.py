"""DiffGRM: the next item's SID by masked discrete diffusion over its digits, not left to right.

The seed paper's three parts, on recsage's lazy context encoder (one vector per history item):
- **Bidirectional digit denoiser.** The target's L digits are a length-L sequence; masked digits
  are a per-level [MASK] embedding. A transformer (self-attention over all digits, no causal
  mask, cross-attention to the history) predicts every masked digit from the history and the
  digits already known — so level 3 can be decided before level 1 when it is the surer one.
- **On-policy Coherent Noising (OCN).** Training masks k ~ U{1..L} digits. For a share of samples
  (`ocn_fraction`) the k masked digits are those the model itself is least sure of (one no-grad
  pass with every digit masked): the states inference visits, where the confident digits are
  filled first and the uncertain ones are still masked. The rest are masked uniformly at random.
- **Confidence-guided parallel denoising.** Decoding starts from all-[MASK]; each step, every
  beam fills the digit its model is most confident about with its top codes; beams are pooled
  per user and the best kept. After L steps the beam holds distinct real items (diverse top-K).
Every distribution is restricted to codes that still lead to a real item given the digits
already filled (`SIDPatternIndex`: the SID trie generalised to any fill order), in training and
decoding, so DiffGRM cannot emit an invalid SID.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recsage.core.config import read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.recmodels.base import register_recommender
from recsage.recmodels.generative import FORMAT_VERSION, GenerativeConfig, GenerativeModule, GenerativeSIDRecommender
from recsage.tokenizers.sid_table import SIDTable


@dataclass(frozen=True)
class DiffGRMConfig(GenerativeConfig):
    ocn_fraction: float = 0.5  # share of samples masked on-policy (the model's least-confident digits); the rest uniformly
    trie_softmax: bool = True  # every digit's softmax over the codes that still reach a real item (fill-order free)


class SIDPatternIndex:
    """Which codes each empty digit may take, given any set of filled digits.

    A partial SID is keyed by Σ_{l filled} (code_l + 1)·base^l (0 for an empty digit), so every
    fill order of the same digits meets the same key. For each filled-set S (a bitmask) the
    sorted keys of all items' restrictions to S are kept with, per empty digit p, a boolean table
    (key × code) of the codes real items continue with."""

    def __init__(self, codes: np.ndarray, level_sizes: list[int]) -> None:
        self.n_items, self.n_levels = codes.shape
        self.base = max(level_sizes) + 1
        if self.n_levels * np.log2(self.base) > 62:
            raise InvalidInputError(f"{self.n_levels} levels of {self.base - 1} codes do not fit a 64-bit key", field="sid")
        self.level_sizes = list(level_sizes)
        self.weights = torch.tensor([self.base ** lv for lv in range(self.n_levels)], dtype=torch.long)
        self.width = max(level_sizes)
        c = torch.from_numpy(np.asarray(codes, dtype=np.int64))
        self.keys: dict[int, torch.Tensor] = {}
        self.allowed: dict[tuple[int, int], torch.Tensor] = {}
        for s in range(2 ** self.n_levels - 1):  # every filled-set but "all filled"
            filled = self.filled_levels(s)
            k = self.key(c, torch.tensor(filled)[None].expand(len(c), -1))
            uniq, inv = torch.unique(k, return_inverse=True)
            self.keys[s] = uniq
            for p in range(self.n_levels):
                if not filled[p]:
                    table = torch.zeros(len(uniq), self.width, dtype=torch.bool)
                    table[inv, c[:, p]] = True
                    self.allowed[(s, p)] = table
        full = self.key(c, torch.ones_like(c, dtype=torch.bool))
        self.full_keys, order = torch.sort(full)
        self.full_items = order
        if len(torch.unique(full)) != len(full):
            raise InvalidInputError("codebook has colliding semantic IDs; refit with --collision suffix or reassign", field="sid")

    def filled_levels(self, s: int) -> list[bool]:
        return [bool(s >> lv & 1) for lv in range(self.n_levels)]

    def key(self, codes: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
        return ((codes + 1) * filled * self.weights).sum(-1)

    def mask(self, codes: torch.Tensor, filled: torch.Tensor) -> torch.Tensor:
        """(R, L) codes and filled flags → (R, L, width) allowed codes for each empty digit (filled digits: all False)."""
        out = torch.zeros(len(codes), self.n_levels, self.width, dtype=torch.bool)
        sets = (filled.long() << torch.arange(self.n_levels)).sum(-1)
        keys = self.key(codes, filled)
        for s in torch.unique(sets).tolist():
            rows = (sets == s).nonzero().squeeze(1)
            idx = torch.searchsorted(self.keys[s], keys[rows])
            for p in range(self.n_levels):
                if (s, p) in self.allowed:
                    out[rows, p] = self.allowed[(s, p)][idx.clamp_max(len(self.keys[s]) - 1)]
        return out

    def items(self, codes: torch.Tensor) -> torch.Tensor:
        """(R, L) complete codes → item ids (-1 where no item has them)."""
        k = self.key(codes, torch.ones_like(codes, dtype=torch.bool))
        pos = torch.searchsorted(self.full_keys, k).clamp_max(len(self.full_keys) - 1)
        return torch.where(self.full_keys[pos] == k, self.full_items[pos], -1)


class DiffGRMModule(GenerativeModule):
    def __init__(self, n_items: int, codes: np.ndarray, config: DiffGRMConfig, side_features: np.ndarray | None = None) -> None:
        super().__init__(n_items, codes, GenerativeConfig(**{k: v for k, v in config.to_dict().items() if k in GenerativeConfig.__dataclass_fields__
                                                             and k != "trie_softmax"}, trie_softmax=False), side_features)
        self.config = config
        self.mask_token = nn.Embedding(self.n_levels, config.dim)
        nn.init.normal_(self.mask_token.weight, std=0.02)
        self.index = SIDPatternIndex(codes, self.vocab.level_sizes)  # rebuilt from the codebook, not saved

    def denoise(self, ctx: torch.Tensor, ctx_pad: torch.Tensor, codes: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """codes (B, L) (anything where masked), masked (B, L) → log-probabilities (B, L, width) of
        every digit, each over the codes that still reach a real item given the unmasked digits."""
        levels = torch.arange(self.n_levels, device=codes.device)
        tokens = (codes.clamp_min(0) + torch.from_numpy(self.vocab.offsets)[None]).masked_fill(masked, 0)
        x = torch.where(masked[..., None], self.mask_token(levels)[None].expand(len(codes), -1, -1), self.token(tokens)) + self.level(levels)[None]
        h = self.out_norm(self.decoder(self.dropout(x), ctx, memory_key_padding_mask=ctx_pad))
        width = self.index.width
        logits = torch.stack([nn.functional.pad(self.level_logits(h[:, lv], lv), (0, width - self.vocab.level_sizes[lv]), value=float("-inf"))
                              for lv in range(self.n_levels)], 1)
        if self.config.trie_softmax:
            logits = logits.masked_fill(~self.index.mask(codes.clamp_min(0), ~masked) & masked[..., None], float("-inf"))
        return torch.log_softmax(logits, -1)

    def noise(self, ctx: torch.Tensor, ctx_pad: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Training masks: k ~ U{1..L} digits per sample, chosen by the model's uncertainty (OCN) or at random."""
        b, n = codes.shape
        k = torch.randint(1, n + 1, (b, 1))
        order = torch.rand(b, n)  # random masking: the k digits with the largest random keys
        if self.config.ocn_fraction > 0:
            with torch.no_grad():
                conf = self.denoise(ctx.detach(), ctx_pad, codes, torch.ones_like(codes, dtype=torch.bool)).amax(-1)  # (B, L)
            on_policy = torch.rand(b, 1) < self.config.ocn_fraction
            order = torch.where(on_policy, -conf, order)  # the least confident digits stay masked
        rank = order.argsort(1, descending=True).argsort(1)
        return rank < k

    def forward(self, hist: torch.Tensor, target_codes: torch.Tensor) -> torch.Tensor:
        ctx, pad = self.encode(self.thin_history(hist))
        masked = self.noise(ctx, pad, target_codes)
        logp = self.denoise(ctx, pad, target_codes, masked)
        nll = -logp.gather(2, target_codes[..., None]).squeeze(2)
        ls = self.config.label_smoothing
        if ls:
            finite = torch.isfinite(logp)
            nll = (1 - ls) * nll - ls * logp.masked_fill(~finite, 0).sum(-1) / finite.sum(-1).clamp_min(1)
        return (nll * masked).sum() / masked.sum()


def denoise_search(module: DiffGRMModule, ctx: torch.Tensor, ctx_pad: torch.Tensor, beam: int) -> tuple[np.ndarray, np.ndarray]:
    """Confidence-guided parallel denoising with a beam: (items, scores) per query, best first.

    All beams start all-masked. Each step every beam scores all its masked digits, fills the one
    with the highest top log-probability with each of its `beam` best codes; candidates reaching
    the same partial SID by another order are merged (best score kept), and each query keeps its
    `beam` best. L steps give complete, real SIDs."""
    q, n = len(ctx), module.n_levels
    codes = torch.zeros(q, 1, n, dtype=torch.long)
    filled = torch.zeros(q, 1, n, dtype=torch.bool)
    score = torch.zeros(q, 1)
    for _ in range(n):
        width = codes.shape[1]
        flat = lambda t: t.reshape(q * width, *t.shape[2:])  # noqa: E731
        logp = module.denoise(ctx.repeat_interleave(width, 0), ctx_pad.repeat_interleave(width, 0), flat(codes), ~flat(filled))
        logp = logp.masked_fill(flat(filled)[..., None], float("-inf"))
        best = logp.amax(-1)  # (R, L): confidence of each empty digit
        digit = best.argmax(-1)  # the surest digit of each beam
        lp = logp[torch.arange(len(logp)), digit]  # (R, width)
        top, code = lp.topk(min(beam, lp.shape[1]), -1)  # (R, b)
        code = code.masked_fill(~torch.isfinite(top), 0)  # no such code (fewer valid codes than the beam): a dead candidate
        b = top.shape[1]
        cand_score = (flat(score)[:, None] + top).reshape(q, width * b)
        cand_codes = flat(codes)[:, None].repeat(1, b, 1)
        cand_filled = flat(filled)[:, None].repeat(1, b, 1)
        rows = torch.arange(len(digit))[:, None].expand(-1, b)
        cand_codes[rows, torch.arange(b)[None].expand(len(digit), -1), digit[:, None].expand(-1, b)] = code
        cand_filled[rows, torch.arange(b)[None].expand(len(digit), -1), digit[:, None].expand(-1, b)] = True
        cand_codes, cand_filled = cand_codes.reshape(q, width * b, n), cand_filled.reshape(q, width * b, n)
        # one beam per partial SID: a duplicate reached by another fill order keeps only its best score
        key = module.index.key(cand_codes, cand_filled)
        order = torch.argsort(cand_score, dim=1, descending=True, stable=True)
        key_sorted = key.gather(1, order)
        first = torch.ones_like(key_sorted, dtype=torch.bool)
        ks, pos = torch.sort(key_sorted, dim=1, stable=True)  # equal keys adjacent, best first among them
        dup = torch.zeros_like(first)
        dup[:, 1:] = ks[:, 1:] == ks[:, :-1]
        first.scatter_(1, pos, ~dup)
        cand_score = cand_score.scatter(1, order, torch.where(first, cand_score.gather(1, order), float("-inf")))
        keep = cand_score.topk(min(beam, cand_score.shape[1]), 1).indices
        score = cand_score.gather(1, keep)
        codes = cand_codes.gather(1, keep[..., None].expand(-1, -1, n))
        filled = cand_filled.gather(1, keep[..., None].expand(-1, -1, n))
    items = module.index.items(codes.reshape(-1, n)).reshape(q, -1)
    items = torch.where(torch.isfinite(score), items, -1)
    return items.numpy(), score.numpy()


@register_recommender("diffgrm")
class DiffGRMRecommender(GenerativeSIDRecommender):
    """`recommend`, training, persistence and cold-start fallback as the other generative models;
    the decoder is the digit denoiser and decoding is `denoise_search`."""

    def __init__(self, sid_table: SIDTable, config: DiffGRMConfig | None = None, *, side_features: np.ndarray | None = None,
                 checkpoint_dir: str | None = None) -> None:
        config = config or DiffGRMConfig()
        if not 0 <= config.ocn_fraction <= 1:
            raise InvalidInputError(f"ocn_fraction must be in [0, 1], got {config.ocn_fraction}", field="ocn_fraction")
        if config.architecture != "lazy":
            raise InvalidInputError("DiffGRM uses the lazy context encoder (architecture 'lazy')", field="architecture")
        super().__init__(sid_table, config, side_features=side_features, checkpoint_dir=checkpoint_dir)

    def _make_module(self, n_items: int) -> GenerativeModule:
        return DiffGRMModule(n_items, self.sid_table.codes, self.config, self.side_features)

    def _beam_items(self, histories: list[np.ndarray], rows: np.ndarray, beam: int) -> tuple[np.ndarray, np.ndarray]:
        ctx, pad = self.module_.encode(torch.from_numpy(rows))
        return denoise_search(self.module_, ctx, pad, beam)

    def _saved_meta(self) -> dict[str, Any]:
        return {**super()._saved_meta(), "class": "diffgrm"}

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> DiffGRMRecommender:
        d = Path(directory)
        meta = read_saved_meta(d, "diffgrm", FORMAT_VERSION)
        return cls._restore(d, meta, lambda table, side: cls(table, DiffGRMConfig.from_dict(meta["params"]), side_features=side))
