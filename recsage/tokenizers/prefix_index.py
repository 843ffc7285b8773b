"""`SIDPrefixIndex`: a trie over all valid Semantic IDs for constrained decoding.

Every prefix (including the empty one) maps to the sorted array of allowed next codes, so a
lookup is one dict access. `logits_mask` turns that into an additive torch mask.

For batched decoding the trie is also stored densely: prefixes of length l are numbered, and
`children[l]` is an (n_prefixes_l, level_size_l) table whose entry is the id of the extended
prefix (or, at the last level, the item index), -1 where the code is not allowed. Beam search
then advances thousands of beams with one fancy-indexing step instead of a dict lookup each.
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
        self.children = self._dense_children(np.asarray(table.codes, dtype=np.int64))

    def _dense_children(self, codes: np.ndarray) -> list[np.ndarray]:
        n, levels = codes.shape
        pid = np.zeros(n, dtype=np.int64)  # every item starts at the root prefix (id 0)
        tables = []
        for lv in range(levels):
            size = int(codes[:, lv].max()) + 1
            if lv + 1 < levels:
                _, nxt = np.unique(codes[:, : lv + 1], axis=0, return_inverse=True)
                nxt = nxt.reshape(-1)
            else:
                nxt = np.arange(n)
            t = np.full((int(pid.max()) + 1, size), -1, dtype=np.int32 if n < 2**31 else np.int64)
            t[pid, codes[:, lv]] = nxt
            tables.append(t)
            pid = nxt
        return tables

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
