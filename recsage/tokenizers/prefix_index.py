"""`SIDPrefixIndex`: a trie over all valid Semantic IDs for constrained decoding.

Every prefix (including the empty one) maps to the sorted array of allowed next codes, so a
lookup is one dict access. `logits_mask` turns that into an additive torch mask.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.tokenizers.sid_table import SIDTable


class SIDPrefixIndex:
    def __init__(self, table: SIDTable) -> None:
        if not table.is_unique:
            raise InvalidInputError("prefix index needs unique semantic IDs (resolve collisions first)", field="sid")
        self.n_levels = table.n_levels
        self.level_sizes = table.level_sizes
        nxt: dict[tuple, set] = defaultdict(set)
        for row in table.codes:
            for lv in range(self.n_levels):
                nxt[tuple(int(c) for c in row[:lv])].add(int(row[lv]))
        self._next = {p: np.array(sorted(s), dtype=np.int64) for p, s in nxt.items()}
        self._item = {tuple(int(c) for c in row): i for i, row in enumerate(table.codes)}

    def allowed(self, prefix: tuple[int, ...] | list[int]) -> np.ndarray:
        """Codes that may follow `prefix` (empty array: not a valid prefix, or already complete)."""
        return self._next.get(tuple(int(c) for c in prefix), np.empty(0, dtype=np.int64))

    def item(self, sid: tuple[int, ...] | list[int]) -> int | None:
        return self._item.get(tuple(int(c) for c in sid))

    def is_valid(self, sid: tuple[int, ...] | list[int]) -> bool:
        return self.item(sid) is not None

    def __len__(self) -> int:
        return len(self._item)

    def logits_mask(self, prefixes: list[tuple[int, ...]], vocab_size: int, offset: int = 0):
        """(n, vocab_size) torch tensor: 0 where allowed, -inf elsewhere. `offset` shifts codes
        into a model vocabulary where each level occupies its own id range."""
        import torch

        mask = torch.full((len(prefixes), vocab_size), float("-inf"))
        for i, p in enumerate(prefixes):
            a = self.allowed(p)
            if len(a):
                mask[i, torch.from_numpy(a + offset)] = 0.0
        return mask
