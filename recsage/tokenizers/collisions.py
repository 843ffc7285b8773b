"""Making every item's Semantic ID unique.

- `suffix` (TIGER): append one level numbering the items that share a code tuple (0, 1, 2, …).
- `reassign` (LETTER / Sinkhorn style): keep the tuple length; an item whose tuple is taken moves
  to its next-best last-level code that is free under the same prefix. If a prefix runs out of
  free codes the remaining items fall back to a suffix level, and the result says so.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from recsage.core.errors import InvalidInputError

STRATEGIES = ("suffix", "reassign", "none")


def collision_rate(codes: np.ndarray) -> float:
    """Share of items whose full code tuple is shared with at least one other item."""
    if len(codes) == 0:
        return 0.0
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.reshape(-1)] > 1).mean())


def dedup_suffix(codes: np.ndarray) -> np.ndarray:
    """Adds a last level: the item's rank (by item order) among items with the same tuple."""
    seen: dict[tuple, int] = defaultdict(int)
    extra = np.empty(len(codes), dtype=np.int64)
    for i, row in enumerate(map(tuple, codes)):
        extra[i] = seen[row]
        seen[row] += 1
    return np.concatenate([codes, extra[:, None]], axis=1)


def reassign_last_level(codes: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, int]:
    """`candidates[i]` ranks last-level codes for item i (best first). Returns new codes and how
    many items could not be placed (those then need a suffix)."""
    out = codes.copy()
    taken: dict[tuple, set] = defaultdict(set)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, row in enumerate(map(tuple, codes)):
        groups[row].append(i)
    unplaced = 0
    # first pass: one item per tuple keeps its code (the first in item order)
    for row, members in groups.items():
        taken[row[:-1]].add(row[-1])
    for row, members in groups.items():
        for i in members[1:]:
            free = [c for c in candidates[i] if c not in taken[row[:-1]]]
            if free:
                out[i, -1] = free[0]
                taken[row[:-1]].add(free[0])
            else:
                unplaced += 1
    return out, unplaced


def make_unique(codes: np.ndarray, strategy: str, candidates: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    if strategy not in STRATEGIES:
        raise InvalidInputError(f"unknown collision strategy {strategy!r}; known: {', '.join(STRATEGIES)}", field="collision")
    info = {"strategy": strategy, "collision_rate_before": collision_rate(codes)}
    if strategy == "none":
        return codes, info
    if strategy == "suffix":
        out = dedup_suffix(codes)
        info["suffix_max"] = int(out[:, -1].max()) if len(out) else 0
    else:
        if candidates is None:
            raise InvalidInputError("reassign needs ranked last-level candidates", field="collision")
        out, unplaced = reassign_last_level(codes, candidates)
        info["unplaced"] = unplaced
        if collision_rate(out) > 0:  # prefix saturated: finish with a suffix level
            out = dedup_suffix(out)
            info["fell_back_to_suffix"] = True
    info["collision_rate_after"] = collision_rate(out)
    return out, info
