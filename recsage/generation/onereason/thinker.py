"""The OneReason chain as thought tokens for `recmodels.thinking` (the `Thinker` it expects).

Token layout for `n_interests = M`:
- `induction` level: M interest keys (slot order), `n_keys` = none;
- `abduction` level: M dynamics tags, `len(DYNAMICS)` = none;
- `deduction` level: the chosen slot, M = a new interest.
`levels` picks how much of the chain the model thinks: `("induction",)` is the one-level
ablation, all three the full chain. Induction and abduction are functions of the history alone
(`n_forced`); the deduction uses the target in training, so the model must produce it itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.generation.onereason.chains import DYNAMICS, NEW_INTEREST, Chain, ChainConfig, InterestVocab, derive_chain

LEVELS = ("induction", "abduction", "deduction")


class ChainThinker:
    def __init__(self, vocab: InterestVocab, config: ChainConfig = ChainConfig(), levels: Sequence[str] = LEVELS) -> None:
        levels = tuple(levels)
        if not levels or any(lv not in LEVELS for lv in levels) or levels != tuple(lv for lv in LEVELS if lv in levels):
            raise InvalidInputError(f"levels must be a prefix-ordered subset of {', '.join(LEVELS)}, got {levels}", field="levels")
        self.vocab = vocab
        # every training sample needs a thought, so a one-item history still gets one
        self.config = replace(config, min_history=1)
        self.levels = levels
        m = self.config.n_interests
        sizes: list[int] = []
        if "induction" in levels:
            sizes += [vocab.n_keys + 1] * m
        if "abduction" in levels:
            sizes += [len(DYNAMICS) + 1] * m
        if "deduction" in levels:
            sizes += [m + 1]
        self.sizes = tuple(sizes)
        self.n_forced = m * sum(lv in levels for lv in ("induction", "abduction"))

    def chain(self, history: Sequence[int], target: int | None = None) -> Chain | None:
        return derive_chain(history, self.vocab, self.config, target=target) if len(history) else None

    def encode(self, chain: Chain | None) -> list[int]:
        m = self.config.n_interests
        slots = list(chain.interests) if chain is not None else []
        out: list[int] = []
        if "induction" in self.levels:
            out += [i.key for i in slots] + [self.vocab.n_keys] * (m - len(slots))
        if "abduction" in self.levels:
            out += [DYNAMICS.index(i.dynamics) for i in slots] + [len(DYNAMICS)] * (m - len(slots))
        if "deduction" in self.levels:
            chosen = chain.chosen_slot if chain is not None else NEW_INTEREST
            out.append(m if chosen == NEW_INTEREST else chosen)
        return out

    def thoughts(self, histories: Sequence[np.ndarray], targets: np.ndarray | None = None) -> np.ndarray:
        rows = [self.encode(self.chain(h, None if targets is None else int(targets[i]))) for i, h in enumerate(histories)]
        return np.asarray(rows, dtype=np.int64).reshape(len(histories), len(self.sizes))

    def describe(self, thought: Sequence[int]) -> dict[str, Any]:
        """Thought codes → readable structure (what the model 'thought'), for explanations."""
        m, j, out = self.config.n_interests, 0, {}
        if "induction" in self.levels:
            out["interests"] = [self.vocab.names[k] if k < self.vocab.n_keys else None for k in thought[j : j + m]]
            j += m
        if "abduction" in self.levels:
            out["dynamics"] = [DYNAMICS[d] if d < len(DYNAMICS) else None for d in thought[j : j + m]]
            j += m
        if "deduction" in self.levels:
            out["chosen_slot"] = NEW_INTEREST if thought[j] == m else int(thought[j])
        return out

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params = {"kind": "onereason-chain", "interest_key": self.vocab.kind, "names": list(self.vocab.names), "levels": list(self.levels),
                  "chain": {k: v for k, v in self.config.__dict__.items() if k != "min_history"}, "sizes": list(self.sizes)}
        return params, {"item_keys": self.vocab.item_keys}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> ChainThinker:
        if params.get("kind") != "onereason-chain" or "item_keys" not in arrays:
            raise InvalidInputError("saved thinker is not a OneReason chain thinker", field="thinker")
        vocab = InterestVocab(str(params["interest_key"]), np.asarray(arrays["item_keys"], dtype=np.int64), tuple(params["names"]))
        return cls(vocab, ChainConfig(**params.get("chain", {})), params["levels"])
