"""The canonical, typed tables every loader produces and every component consumes.

Ids are remapped to contiguous int64 indices (`item_id` 0..n_items-1, `user_id` 0..n_users-1)
so models can index arrays directly; the source's own id is kept as `raw_id`.
Interactions are stored in chronological order per user (stable: file order breaks ties), so the
row order *is* the sequence order and splits never re-sort.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError

FORMAT_VERSION = 1

ITEM_COLUMNS = ["item_id", "raw_id", "title", "description", "brand", "categories"]
USER_COLUMNS = ["user_id", "raw_id"]
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "rating"]
COMMENT_COLUMNS = ["comment_id", "item_id", "user", "parent_id", "text", "likes", "created"]
EXPERIMENT_COLUMNS = ["test_id", "variant", "headline", "lede", "excerpt", "impressions", "clicks"]

_TABLES = ("items", "users", "interactions", "comments", "experiments")


@dataclass
class Dataset:
    """A loaded dataset: whichever of the canonical tables its source provides.

    `meta` records provenance: source folder, licence, and `timestamp_kind` — "unix" for real
    times, "order" when the source only gives the sequence order (Amazon LOO files).
    """

    name: str
    items: pd.DataFrame | None = None
    interactions: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    comments: pd.DataFrame | None = None
    experiments: pd.DataFrame | None = None
    sid_indexes: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return 0 if self.items is None else len(self.items)

    @property
    def n_users(self) -> int:
        if self.users is not None:
            return len(self.users)
        if self.interactions is not None and len(self.interactions):
            return int(self.interactions["user_id"].max()) + 1
        return 0

    def sequences(self) -> list[np.ndarray]:
        """Per-user chronological item arrays, indexed by user_id (empty for users with none)."""
        if self.interactions is None:
            raise InvalidInputError(f"dataset '{self.name}' has no interactions")
        inter = self.interactions
        seqs: list[np.ndarray] = [np.empty(0, dtype=np.int64) for _ in range(self.n_users)]
        users = inter["user_id"].to_numpy()
        items = inter["item_id"].to_numpy()
        if len(users) == 0:
            return seqs
        # rows are grouped by user in chronological order (see module docstring)
        bounds = np.flatnonzero(np.diff(users)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(users)]])
        for s, e in zip(starts, ends):
            seqs[int(users[s])] = items[s:e].astype(np.int64)
        return seqs

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for t in _TABLES:
            df = getattr(self, t)
            if df is not None:
                out[f"n_{t}"] = int(len(df))
        if self.interactions is not None:
            out["n_interacting_users"] = int(self.interactions["user_id"].nunique())
            out["n_interacted_items"] = int(self.interactions["item_id"].nunique())
        if self.experiments is not None:
            out["n_tests"] = int(self.experiments["test_id"].nunique())
        for name, idx in self.sid_indexes.items():
            out[f"sid_index.{name}.n_items"] = int(len(idx))
        out["timestamp_kind"] = self.meta.get("timestamp_kind")
        return out

    # ---- persistence: a folder of Parquet files plus a JSON manifest, never pickle ----
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for t in _TABLES:
            df = getattr(self, t)
            if df is not None:
                df.to_parquet(directory / f"{t}.parquet", index=False)
        for name, idx in self.sid_indexes.items():
            (directory / "sid_indexes").mkdir(exist_ok=True)
            idx.to_parquet(directory / "sid_indexes" / f"{name}.parquet", index=False)
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "meta": self.meta,
            "summary": self.summary(),
        }
        (directory / "dataset.json").write_text(json.dumps(manifest, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Dataset:
        directory = Path(directory)
        manifest_path = directory / "dataset.json"
        if not manifest_path.exists():
            raise InvalidInputError(
                "not a prepared recsage dataset (no dataset.json); run `recsage data prepare` first",
                file=str(directory),
            )
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"invalid JSON: {e.msg}", file=str(manifest_path), record=f"line {e.lineno}") from None
        if manifest.get("format_version") != FORMAT_VERSION:
            raise InvalidInputError(
                f"format_version {manifest.get('format_version')!r} is not {FORMAT_VERSION}",
                file=str(manifest_path),
                field="format_version",
            )
        tables = {t: read_parquet_table(directory / f"{t}.parquet") for t in _TABLES if (directory / f"{t}.parquet").exists()}
        sid = {p.stem: read_parquet_table(p) for p in sorted((directory / "sid_indexes").glob("*.parquet"))}
        return cls(name=manifest["name"], sid_indexes=sid, meta=manifest.get("meta", {}), **tables)


def read_parquet_table(path: Path) -> pd.DataFrame:
    """A stored table; a corrupt, truncated or empty file is an error naming it (pyarrow's own
    exceptions would surface as a traceback)."""
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow.ArrowInvalid, OSError, …: the file is not a readable Parquet table
        raise InvalidInputError(f"not a readable Parquet table ({type(e).__name__}: {str(e)[:160]}); prepare the dataset again",
                                file=str(path)) from None

