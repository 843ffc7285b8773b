"""Three-level cognition chains derived from a user's history, so every claim is checkable.

OneReason's chain of thought reorganises a history into interests (induction), says how each
interest behaves over time (abduction) and which one the next item serves (deduction). Here the
chain is *computed* from the data — groups, counts, positions — and only then put into words by an
LLM (`verbalise.py`), whose text the verifier checks against this structure. Nothing in a chain is
invented: an interest is a set of history positions sharing one key (a catalogue category, or the
item's first Semantic-ID code), its dynamics a rule over those positions.

The deduction has two sources, kept apart by `chosen_by`:
- `"target"` — the interest the actual next item belongs to (training supervision and SFT data;
  it uses the answer, so such chains are never inputs when that answer is evaluated);
- `"rule"` — history only: the most recent rising interest, else the newest item's interest.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError

CHAIN_VERSION = "onereason-chain@1"
DYNAMICS = ("long-term", "rising", "periodic", "one-off")
KEYS = ("category", "sid")
NEW_INTEREST = -1  # deduction: the next item starts an interest the history does not show


@dataclass(frozen=True)
class ChainConfig:
    n_interests: int = 3  # interests kept per chain (the most frequent, newest first on ties)
    min_history: int = 2  # shorter histories are rejected (counted) — too short for dynamics
    max_history: int = 20  # the newest items considered (the recommender's window)
    recent_window: int = 3  # "recent" = among the newest this many positions
    examples_per_interest: int = 2

    def __post_init__(self) -> None:
        for name in ("n_interests", "min_history", "max_history", "recent_window", "examples_per_interest"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be ≥ 1, got {getattr(self, name)}", field=name)


@dataclass(frozen=True)
class InterestVocab:
    """Item → interest key (an int) and the key's readable name.

    `category`: the catalogue category at `depth` (auto: the second level below a root that
    nearly every item shares, as Amazon's "Industrial & Scientific"; else the first listed, as a
    MovieLens genre); an item without one falls back to its shallower category. `sid`: the first
    Semantic-ID code, named by its items' most common category.
    """

    kind: str
    item_keys: np.ndarray  # (n_items,) int64, key id per item
    names: tuple[str, ...]

    @property
    def n_keys(self) -> int:
        return len(self.names)

    @classmethod
    def from_catalog(cls, items: pd.DataFrame, kind: str = "category", *, sid_codes: np.ndarray | None = None,
                     depth: int | None = None) -> InterestVocab:
        if kind not in KEYS:
            raise InvalidInputError(f"unknown interest key {kind!r}; known: {', '.join(KEYS)}", field="interest_key")
        items = items.sort_values("item_id")
        cats = [list(c) if c is not None and len(c) else [] for c in items.get("categories", pd.Series([[]] * len(items)))]
        if depth is None:
            roots = Counter(c[0] for c in cats if c)
            shared_root = bool(roots) and roots.most_common(1)[0][1] >= 0.9 * len(cats)
            depth = 2 if shared_root else 0
        labels = [str(c[min(depth, len(c) - 1)]) if c else "(uncategorised)" for c in cats]
        if kind == "category":
            names = tuple(sorted(set(labels)))
            index = {n: i for i, n in enumerate(names)}
            return cls(kind, np.array([index[n] for n in labels], dtype=np.int64), names)
        if sid_codes is None:
            raise InvalidInputError("interest key 'sid' needs the items' Semantic IDs", field="sid")
        first = np.asarray(sid_codes)[:, 0].astype(np.int64)
        n = int(first.max()) + 1
        names = []
        for code in range(n):
            members = [labels[i] for i in np.flatnonzero(first == code)]
            common = Counter(members).most_common(1)[0][0] if members else "unused"
            names.append(f"<a_{code}> {common}")
        return cls(kind, first, tuple(names))


@dataclass(frozen=True)
class Interest:
    slot: int  # rank in the chain (0 = most frequent)
    key: int
    name: str
    count: int
    positions: tuple[int, ...]  # 0-based positions in the chain's history, oldest first
    dynamics: str
    example_items: tuple[int, ...]  # newest first


@dataclass(frozen=True)
class Chain:
    user_id: int
    history: tuple[int, ...]  # item ids, oldest first (the newest `max_history`)
    interests: tuple[Interest, ...]
    chosen_slot: int  # deduction: a slot, or NEW_INTEREST
    chosen_by: str  # "target" | "rule"
    target: int | None = None  # only when chosen_by == "target"
    role: str | None = None  # TagCF / profile role where known
    version: str = CHAIN_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chosen(self) -> Interest | None:
        return self.interests[self.chosen_slot] if self.chosen_slot != NEW_INTEREST else None

    def to_record(self) -> dict[str, Any]:
        """Flat Parquet row; the interests travel as JSON."""
        return {"user_id": self.user_id, "history": list(self.history), "interests": json.dumps([asdict(i) for i in self.interests]),
                "chosen_slot": self.chosen_slot, "chosen_by": self.chosen_by, "target": -1 if self.target is None else self.target,
                "role": self.role or "", "version": self.version}

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Chain:
        interests = tuple(Interest(**{**i, "positions": tuple(i["positions"]), "example_items": tuple(i["example_items"])})
                          for i in json.loads(r["interests"]))
        target = int(r["target"])
        return cls(int(r["user_id"]), tuple(int(x) for x in r["history"]), interests, int(r["chosen_slot"]), str(r["chosen_by"]),
                   None if target < 0 else target, r.get("role") or None, str(r.get("version", CHAIN_VERSION)))


class ChainRejected(InvalidInputError):
    """A history this chain cannot be derived from; `kind` is the counted reason."""

    def __init__(self, message: str, *, kind: str, **where: Any) -> None:
        self.kind = kind
        super().__init__(message, **where)


def dynamics_of(positions: Sequence[int], length: int, recent_window: int) -> str:
    """one-off: seen once; periodic: ≥ 3 times at near-regular gaps (coefficient of variation
    < .5, mean gap ≥ 2, so not one run); rising: newest occurrence among the recent positions and
    more of it in the newer half; long-term: the rest."""
    n = len(positions)
    if n == 1:
        return "one-off"
    gaps = np.diff(positions)
    if n >= 3 and gaps.mean() >= 2 and gaps.std() / gaps.mean() < 0.5:
        return "periodic"
    half = length / 2
    newer = sum(p >= half for p in positions)
    if positions[-1] >= length - recent_window and newer > n - newer:
        return "rising"
    return "long-term"


def derive_chain(history: Sequence[int], vocab: InterestVocab, config: ChainConfig = ChainConfig(), *, user_id: int = -1,
                 target: int | None = None, role: str | None = None) -> Chain:
    """The chain for one history. With `target` the deduction is the target's interest
    (`chosen_by="target"`); without, the history-only rule."""
    h = [int(i) for i in history][-config.max_history :]
    n_items = len(vocab.item_keys)
    bad = [i for i in h + ([target] if target is not None else []) if not 0 <= i < n_items]
    if bad:
        raise ChainRejected(f"item {bad[0]} is not in the catalogue / codebook ({n_items} items)", kind="item outside the catalogue", field="history", record=str(user_id))
    if len(h) < config.min_history:
        raise ChainRejected(f"history has {len(h)} item(s); a chain needs ≥ {config.min_history}", kind="history too short", field="history", record=str(user_id))
    keys = vocab.item_keys[h]
    groups: dict[int, list[int]] = {}
    for pos, k in enumerate(keys):
        groups.setdefault(int(k), []).append(pos)
    ranked = sorted(groups.items(), key=lambda kv: (-len(kv[1]), -kv[1][-1]))[: config.n_interests]
    interests = tuple(
        Interest(slot, key, vocab.names[key], len(pos), tuple(pos), dynamics_of(pos, len(h), config.recent_window),
                 tuple(h[p] for p in reversed(pos))[: config.examples_per_interest])
        for slot, (key, pos) in enumerate(ranked))
    if target is not None:
        tk = int(vocab.item_keys[target])
        chosen = next((i.slot for i in interests if i.key == tk), NEW_INTEREST)
        by = "target"
    else:
        rising = [i for i in interests if i.dynamics == "rising"]
        newest = next((i.slot for i in interests if i.key == int(keys[-1])), 0)
        chosen = max(rising, key=lambda i: i.positions[-1]).slot if rising else newest
        by = "rule"
    return Chain(user_id, tuple(h), interests, chosen, by, target, role)


def derive_chains(sequences: Sequence[Sequence[int]], vocab: InterestVocab, config: ChainConfig = ChainConfig(), *,
                  user_ids: Sequence[int] | None = None, with_target: bool = True,
                  roles: dict[int, str] | None = None) -> tuple[list[Chain], Counter]:
    """One chain per training sequence: history = all but the last item, target = the last
    (`with_target`), or history = the whole sequence (rule deduction). Rejections are counted by
    reason and the batch goes on."""
    chains, rejected = [], Counter()
    ids = list(user_ids) if user_ids is not None else list(range(len(sequences)))
    for uid, seq in zip(ids, sequences):
        seq = [int(x) for x in seq]
        hist, tgt = (seq[:-1], seq[-1]) if with_target and seq else (seq, None)
        try:
            chains.append(derive_chain(hist, vocab, config, user_id=int(uid), target=tgt, role=(roles or {}).get(int(uid))))
        except ChainRejected as e:
            rejected[e.kind] += 1
    return chains, rejected


def chains_frame(chains: Sequence[Chain]) -> pd.DataFrame:
    return pd.DataFrame([c.to_record() for c in chains])


def chains_from_frame(frame: pd.DataFrame) -> list[Chain]:
    return [Chain.from_record(r) for r in frame.to_dict("records")]
