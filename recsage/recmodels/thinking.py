"""A generative SID recommender that thinks before it names an item (OneReason's test).

The decoder emits thought tokens, then the SID: `BOS_think, t_1 … t_n, c_1 … c_L`. The thought is a
structured chain of thought as tokens — supplied by a `Thinker` (in recsage, the OneReason chain:
the history's interest keys, each interest's dynamics, the interest the next item serves) — and
is supervised like the SID. The same weights also decode with the thought empty
(`BOS_nothink, c_1 … c_L`): a share of every batch trains that way, so non-thinking decoding is
the same model, not a second one. Decoding modes:
- `think`: the model generates the whole thought, then the SID (beam search over both);
- `grounded`: the thought steps the history determines (`Thinker.n_forced`) are pinned to the
  derived values; the model generates the rest;
- `nothink`: the thought forced empty;
- `race`: `think` and `nothink` candidates interleaved rank by rank (duplicates dropped), as
  OneReason's evaluation merges its two modes.

The thinker lives outside this layer (recmodels does not import generation); it is handed in and
its state is saved with the weights, so `pipelines` can rebuild it on load.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from recsage.core.config import read_saved_meta
from recsage.core.errors import InvalidInputError
from recsage.recmodels.base import register_recommender
from recsage.recmodels.generative import (
    FORMAT_VERSION, DecodePlan, GenerativeConfig, GenerativeModule, GenerativeSIDRecommender, IncrementalBeamDecoder,
)
from recsage.tokenizers.sid_table import SIDTable

MODES = ("think", "grounded", "nothink", "race")


class Thinker(Protocol):
    """Thought tokens for histories: step j takes codes 0..sizes[j]-1; the first `n_forced` steps
    are a function of the history alone (given `targets`, later steps may use the answer)."""

    sizes: tuple[int, ...]
    n_forced: int

    def thoughts(self, histories: Sequence[np.ndarray], targets: np.ndarray | None = None) -> np.ndarray: ...

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...


@dataclass(frozen=True)
class ThinkingConfig(GenerativeConfig):
    nothink_fraction: float = 0.25  # share of each training batch decoded with the thought empty
    thought_weight: float = 1.0  # thought-token CE relative to the SID loss
    shuffle_thoughts: bool = False  # ablation: every sample gets another random sample's thought (ungrounded)
    decode: str = "think"  # think | grounded | nothink | race


class ThinkingModule(GenerativeModule):
    def __init__(self, n_items: int, codes: np.ndarray, config: ThinkingConfig, thought_sizes: Sequence[int],
                 side_features: np.ndarray | None = None, trie: list[np.ndarray] | None = None) -> None:
        super().__init__(n_items, codes, config, side_features, trie)
        self.thought_sizes = tuple(int(s) for s in thought_sizes)
        n_t = len(self.thought_sizes)
        base = self.vocab.size
        self.thought_offsets = tuple(int(base + o) for o in np.concatenate([[0], np.cumsum(self.thought_sizes)[:-1]]))
        self.bos_think = base + sum(self.thought_sizes)
        self.bos_nothink = self.bos_think + 1
        self.token = nn.Embedding(self.bos_nothink + 1, config.dim, padding_idx=0)
        nn.init.normal_(self.token.weight, std=0.02)
        self.level = nn.Embedding(n_t + self.n_levels, config.dim)

    def plan(self, mode: str = "think") -> DecodePlan:
        n_t, sid = len(self.thought_sizes), super().plan()
        if mode == "nothink":  # the SID steps keep their think-mode positions
            return DecodePlan(self.bos_nothink, sid.offsets, sid.sizes, (0,) + tuple(range(n_t + 1, n_t + self.n_levels)))
        return DecodePlan(self.bos_think, self.thought_offsets + sid.offsets, self.thought_sizes + sid.sizes, tuple(range(n_t + self.n_levels)), n_free=n_t)

    def forward(self, hist: torch.Tensor, target_codes: torch.Tensor, thoughts: torch.Tensor) -> torch.Tensor:
        c: ThinkingConfig = self.config  # type: ignore[assignment]
        ctx, pad = self.encode(self.thin_history(hist))
        b, n_t = len(hist), len(self.thought_sizes)
        nothink = torch.rand(b, device=hist.device) < c.nothink_fraction if self.training else torch.zeros(b, dtype=torch.bool)
        loss = ctx.new_zeros(())
        think = ~nothink
        if think.any():
            plan = self.plan("think")
            h = self.decode_codes(ctx[think], pad[think], torch.cat([thoughts[think], target_codes[think]], 1), plan)
            ce = sum(nn.functional.cross_entropy(self.step_logits(h[:, j], plan, j), thoughts[think][:, j]) for j in range(n_t)) / max(n_t, 1)
            loss = loss + think.sum() / b * (self.sid_nll(h[:, n_t:], target_codes[think]) + c.thought_weight * ce)
        if nothink.any():
            h = self.decode_codes(ctx[nothink], pad[nothink], target_codes[nothink], self.plan("nothink"))
            loss = loss + nothink.sum() / b * self.sid_nll(h, target_codes[nothink])
        return loss


def interleave(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rank-by-rank merge of two candidate lists per row (a first), duplicates dropped; the
    score is the rank position (higher = better), since the two modes' log-probs differ in scale."""
    (ia, _), (ib, _) = a, b
    width = ia.shape[1]
    items = np.full((len(ia), width), -1, dtype=np.int64)
    for r in range(len(ia)):
        seen: set[int] = set()
        out = []
        for x, y in zip(ia[r], ib[r]):
            for v in (int(x), int(y)):
                if v >= 0 and v not in seen:
                    seen.add(v)
                    out.append(v)
        items[r, : min(width, len(out))] = out[:width]
    scores = np.where(items >= 0, -np.arange(width, dtype=np.float64)[None], -np.inf)
    return items, scores


@register_recommender("thinking")
class ThinkingSIDRecommender(GenerativeSIDRecommender):
    def __init__(self, sid_table: SIDTable, thinker: Thinker, config: ThinkingConfig | None = None, *,
                 side_features: np.ndarray | None = None, checkpoint_dir: str | None = None) -> None:
        super().__init__(sid_table, config or ThinkingConfig(), side_features=side_features, checkpoint_dir=checkpoint_dir)
        self.thinker = thinker
        self.mode = self.config.decode
        if self.mode not in MODES:
            raise InvalidInputError(f"unknown decode mode {self.mode!r}; known: {', '.join(MODES)}", field="decode")

    def with_mode(self, mode: str) -> ThinkingSIDRecommender:
        """The same fitted weights, decoding another way (a shallow copy)."""
        if mode not in MODES:
            raise InvalidInputError(f"unknown decode mode {mode!r}; known: {', '.join(MODES)}", field="decode")
        other = copy.copy(self)
        other.mode = mode
        return other

    def _make_module(self, n_items: int) -> GenerativeModule:
        return ThinkingModule(n_items, self.sid_table.codes, self.config, self.thinker.sizes, self.side_features, trie=self.index_.children)

    def _training_tensors(self, hist: np.ndarray, targets: np.ndarray) -> tuple[torch.Tensor, ...]:
        windows = [row[row > 0] - 1 for row in hist]
        thoughts = np.asarray(self.thinker.thoughts(windows, targets), dtype=np.int64)
        if self.config.shuffle_thoughts:
            thoughts = thoughts[np.random.default_rng(self.config.seed).permutation(len(thoughts))]
        return torch.from_numpy(hist), torch.from_numpy(self.sid_table.codes[targets]), torch.from_numpy(thoughts)

    def _windows(self, histories: list[np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(h)[-self.config.max_items :] for h in histories]

    def _beam_items(self, histories: list[np.ndarray], rows: np.ndarray, beam: int) -> tuple[np.ndarray, np.ndarray]:
        m: ThinkingModule = self.module_  # type: ignore[assignment]
        context = m.encode(torch.from_numpy(rows))
        if self.mode == "nothink":
            return self._search(context, m.plan("nothink"), beam)
        forced = None
        if self.mode == "grounded" and self.thinker.n_forced:
            derived = np.asarray(self.thinker.thoughts(self._windows(histories)), dtype=np.int64)
            forced = np.full(derived.shape, -1, dtype=np.int64)
            forced[:, : self.thinker.n_forced] = derived[:, : self.thinker.n_forced]
        think = self._search(context, m.plan("think"), beam, forced)
        if self.mode == "race":
            return interleave(think, self._search(context, m.plan("nothink"), beam))
        return think

    def generated_thoughts(self, histories: Sequence[np.ndarray], *, grounded: bool = False) -> np.ndarray:
        """The thought the model writes for each history (greedy), (n, thought steps): what an
        explanation shows next to the recommendations."""
        self._check_fitted()
        m: ThinkingModule = self.module_  # type: ignore[assignment]
        m.eval()
        hist = [np.asarray(h, dtype=np.int64) for h in histories]
        rows = self._context_rows(hist)
        derived = np.asarray(self.thinker.thoughts(self._windows(hist)), dtype=np.int64) if grounded else None
        plan = m.plan("think")
        q = np.arange(len(hist))
        prefixes = np.zeros((len(hist), 0), dtype=np.int64)
        with torch.no_grad():
            decoder = IncrementalBeamDecoder(m, *m.encode(torch.from_numpy(rows)), plan)
            for j in range(plan.n_free):
                code = m.step_logits(decoder.step(q, prefixes), plan, j).argmax(-1).numpy()
                if derived is not None and j < self.thinker.n_forced:
                    code = derived[:, j]
                prefixes = np.concatenate([prefixes, code[:, None]], 1)
        return prefixes

    def _saved_meta(self) -> dict[str, Any]:
        params, _ = self.thinker.state()
        return {**super()._saved_meta(), "class": "thinking", "thinker": params}

    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        d = super().save_pretrained(directory)
        _, arrays = self.thinker.state()
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(d / "thinker.safetensors"))
        return d

    @staticmethod
    def saved_thinker(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The thinker's saved (params, arrays), for whoever rebuilds it (pipelines)."""
        from safetensors.numpy import load_file

        d = Path(directory)
        meta = read_saved_meta(d, "thinking", FORMAT_VERSION)
        if not (d / "thinker.safetensors").exists():
            raise InvalidInputError("thinking model folder has no thinker.safetensors", file=str(d))
        return meta.get("thinker", {}), load_file(str(d / "thinker.safetensors"))

    @classmethod
    def from_pretrained(cls, directory: str | Path, thinker: Thinker | None = None) -> ThinkingSIDRecommender:  # type: ignore[override]
        d = Path(directory)
        meta = read_saved_meta(d, "thinking", FORMAT_VERSION)
        if thinker is None:
            raise InvalidInputError("a thinking model loads with its thinker (pipelines.onereason.load_thinking_model rebuilds it)", file=str(d))
        config = ThinkingConfig.from_dict(meta["params"])
        if tuple(thinker.sizes) != tuple(meta["thinker"].get("sizes", thinker.sizes)):
            raise InvalidInputError("the thinker does not match the saved model's thought vocabulary", file=str(d / "config.json"), field="thinker")
        return cls._restore(d, meta, lambda table, side: cls(table, thinker, config, side_features=side))
