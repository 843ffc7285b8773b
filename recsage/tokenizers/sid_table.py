"""`SIDTable`: the item ↔ Semantic-ID mapping that recommenders consume.

Codes are rendered as tokens `<a_12><b_3><c_201>` (one letter per level, as the published
LETTER/TIGER indexes do). A table remembers which item set it was built for (count + hash of
raw ids) so a codebook from a different catalogue is refused instead of silently misused.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError

_TOKEN = re.compile(r"<([a-z])_(\d+)>")


def item_fingerprint(raw_ids: list[str] | np.ndarray) -> str:
    return hashlib.sha256("\n".join(map(str, raw_ids)).encode()).hexdigest()[:16]


def level_letter(level: int) -> str:
    return chr(ord("a") + level)


def sid_to_text(sid: tuple[int, ...] | np.ndarray) -> str:
    return "".join(f"<{level_letter(lv)}_{int(c)}>" for lv, c in enumerate(sid))


def text_to_sid(text: str) -> tuple[int, ...]:
    toks = _TOKEN.findall(text)
    if not toks or "".join(f"<{a}_{b}>" for a, b in toks) != text.strip():
        raise InvalidInputError(f"not a semantic ID string: {text[:60]!r}", field="sid")
    for lv, (letter, _) in enumerate(toks):
        if letter != level_letter(lv):
            raise InvalidInputError(f"level {lv} token is <{letter}_…>, expected <{level_letter(lv)}_…>", field="sid")
    return tuple(int(b) for _, b in toks)


class SIDTable:
    def __init__(self, codes: np.ndarray, *, fingerprint: str | None = None, meta: dict | None = None) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or len(codes) == 0:
            raise InvalidInputError(f"codes must be a non-empty (n_items, n_levels) array, got {codes.shape}", field="codes")
        self.codes = codes
        self.fingerprint = fingerprint
        self.meta = meta or {}
        self._by_sid: dict[tuple, int] | None = None

    @property
    def n_items(self) -> int:
        return len(self.codes)

    @property
    def n_levels(self) -> int:
        return self.codes.shape[1]

    @property
    def level_sizes(self) -> list[int]:
        """Vocabulary size per level (max code + 1)."""
        return [int(self.codes[:, lv].max()) + 1 for lv in range(self.n_levels)]

    @property
    def is_unique(self) -> bool:
        return len(np.unique(self.codes, axis=0)) == self.n_items

    def sid(self, item_id: int) -> tuple[int, ...]:
        if not 0 <= item_id < self.n_items:
            raise InvalidInputError(f"item {item_id} has no semantic ID (table has {self.n_items} items)", field="item_id")
        return tuple(int(c) for c in self.codes[item_id])

    def text(self, item_id: int) -> str:
        return sid_to_text(self.codes[item_id])

    def item(self, sid: tuple[int, ...] | str) -> int | None:
        if isinstance(sid, str):
            sid = text_to_sid(sid)
        if self._by_sid is None:
            if not self.is_unique:
                raise InvalidInputError("semantic IDs are not unique: resolve collisions before mapping SIDs back to items", field="sid")
            self._by_sid = {tuple(map(int, r)): i for i, r in enumerate(self.codes)}
        return self._by_sid.get(tuple(int(c) for c in sid))

    def check_items(self, raw_ids: list[str] | np.ndarray) -> None:
        """Refuse a table built for another catalogue."""
        if len(raw_ids) != self.n_items:
            raise InvalidInputError(f"codebook has {self.n_items} items but the dataset has {len(raw_ids)}: built for a different item set", field="sid")
        if self.fingerprint and self.fingerprint != item_fingerprint(raw_ids):
            raise InvalidInputError("codebook was built for a different item set (item id fingerprint differs)", field="sid")

    @classmethod
    def from_index_frame(cls, df: pd.DataFrame, n_items: int, **kw) -> SIDTable:
        """From a dataset's `sid_indexes[...]` frame (item_id, sid list)."""
        if len(df) != n_items or not np.array_equal(np.sort(df["item_id"].to_numpy()), np.arange(n_items)):
            raise InvalidInputError(f"index covers {len(df)} items, dataset has {n_items}", field="sid")
        codes = np.zeros((n_items, len(df["sid"].iloc[0])), dtype=np.int64)
        codes[df["item_id"].to_numpy()] = np.stack([np.asarray(s) for s in df["sid"]])
        return cls(codes, **kw)

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"item_id": np.arange(self.n_items), "sid": list(self.codes), "sid_text": [self.text(i) for i in range(self.n_items)]}).to_parquet(d / "sids.parquet", index=False)
        (d / "sid_table.json").write_text(json.dumps({"n_items": self.n_items, "n_levels": self.n_levels, "fingerprint": self.fingerprint, "meta": self.meta}, indent=2, default=str))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> SIDTable:
        d = Path(directory)
        if not (d / "sids.parquet").exists():
            raise InvalidInputError("no sids.parquet: not a saved SID table", file=str(d))
        from recsage.datasets.tables import read_parquet_table

        df = read_parquet_table(d / "sids.parquet")
        try:
            info = json.loads((d / "sid_table.json").read_text()) if (d / "sid_table.json").exists() else {}
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"invalid JSON ({e.msg})", file=str(d / "sid_table.json"), record=f"line {e.lineno}") from None
        if not {"item_id", "sid"} <= set(df.columns) or df.empty:
            raise InvalidInputError(f"needs item_id and sid columns with rows; found {list(df.columns)} ({len(df)} rows)", file=str(d / "sids.parquet"))
        try:
            codes = np.stack([np.asarray(s, dtype=np.int64) for s in df.sort_values("item_id")["sid"]])
        except (ValueError, TypeError) as e:
            raise InvalidInputError(f"sid column is not equal-length integer codes ({e})", file=str(d / "sids.parquet"), field="sid") from None
        return cls(codes, fingerprint=info.get("fingerprint"), meta=info.get("meta", {}))
