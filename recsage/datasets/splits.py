"""Evaluation splits, exactly as `shared/PROTOCOLS.md` defines them.

- `loo`: per-user leave-one-out (TIGER/LETTER). Train on targets inside s[:-2]; validate s[-2]
  from s[:-2]; test s[-1] from s[:-1].
- `chrono811`: every interaction is a sample (history = up to `max_history` previous items of the
  user); samples sorted globally by time and cut 80/10/10 (MiniOneRec/BIGRec).
Both are pure functions of the interaction table, so they are deterministic; `save`/`load` keep
them next to the prepared dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsage.core.errors import InvalidInputError
from recsage.datasets.tables import Dataset


@dataclass
class SequenceSet:
    """What a recommender may learn from: per-user chronological item sequences."""

    user_ids: np.ndarray
    sequences: list[np.ndarray]
    n_items: int

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))


@dataclass
class QuerySet:
    """Queries to score: for each, the history the model sees and the one held-out target."""

    user_ids: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, idx: np.ndarray) -> QuerySet:
        return QuerySet(self.user_ids[idx], [self.histories[i] for i in idx], self.targets[idx])


@dataclass
class Split:
    protocol: str
    train: SequenceSet
    valid: QuerySet
    test: QuerySet
    n_items: int
    exclude_seen: bool
    params: dict

    def describe(self) -> dict:
        return {
            "protocol": self.protocol,
            "n_items": self.n_items,
            "exclude_seen": self.exclude_seen,
            "train_users": len(self.train),
            "train_interactions": self.train.n_interactions,
            "valid_queries": len(self.valid),
            "test_queries": len(self.test),
            **self.params,
        }

    # ---- persistence ----
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts, users, hists, targets = [], [], [], []
        for part, qs in (("valid", self.valid), ("test", self.test)):
            parts += [part] * len(qs)
            users += qs.user_ids.tolist()
            hists += [h.tolist() for h in qs.histories]
            targets += qs.targets.tolist()
        parts += ["train"] * len(self.train)
        users += self.train.user_ids.tolist()
        hists += [s.tolist() for s in self.train.sequences]
        targets += [-1] * len(self.train)
        table = pa.table(
            {
                "part": pa.array(parts, pa.string()),
                "user_id": pa.array(users, pa.int64()),
                "items": pa.array(hists, pa.list_(pa.int64())),
                "target": pa.array(targets, pa.int64()),
            }
        )
        meta = {"protocol": self.protocol, "n_items": self.n_items, "exclude_seen": self.exclude_seen, "params": self.params}
        table = table.replace_schema_metadata({"recsage.split": json.dumps(meta)})
        pq.write_table(table, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Split:
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"recsage.split")
        if raw is None:
            raise InvalidInputError("not a recsage split file (no recsage.split metadata)", file=str(path))
        meta = json.loads(raw)
        df = table.to_pandas()
        groups = {p: g for p, g in df.groupby("part", sort=False)}

        def queries(part: str) -> QuerySet:
            g = groups.get(part, df.iloc[:0])
            return QuerySet(g["user_id"].to_numpy(), [np.asarray(h, dtype=np.int64) for h in g["items"]], g["target"].to_numpy())

        tr = groups.get("train", df.iloc[:0])
        train = SequenceSet(tr["user_id"].to_numpy(), [np.asarray(h, dtype=np.int64) for h in tr["items"]], meta["n_items"])
        return cls(meta["protocol"], train, queries("valid"), queries("test"), meta["n_items"], meta["exclude_seen"], meta["params"])


def leave_one_out(dataset: Dataset, max_history: int | None = None) -> Split:
    """Users with fewer than 3 interactions still get a test query (their history may be short or
    empty — scored as a miss if the model cannot answer), never silently dropped."""
    seqs = dataset.sequences()
    tr_u, tr_s, va_u, va_h, va_t, te_u, te_h, te_t = [], [], [], [], [], [], [], []

    def cut(h: np.ndarray) -> np.ndarray:
        return h if max_history is None else h[-max_history:]

    for u, s in enumerate(seqs):
        if len(s) == 0:
            continue
        te_u.append(u)
        te_h.append(cut(s[:-1]))
        te_t.append(int(s[-1]))
        if len(s) >= 2:
            va_u.append(u)
            va_h.append(cut(s[:-2]))
            va_t.append(int(s[-2]))
        if len(s) >= 3:
            tr_u.append(u)
            tr_s.append(s[:-2])
    n = dataset.n_items
    return Split(
        "loo",
        SequenceSet(np.asarray(tr_u, dtype=np.int64), tr_s, n),
        QuerySet(np.asarray(va_u, dtype=np.int64), va_h, np.asarray(va_t, dtype=np.int64)),
        QuerySet(np.asarray(te_u, dtype=np.int64), te_h, np.asarray(te_t, dtype=np.int64)),
        n_items=n,
        exclude_seen=True,
        params={"max_history": max_history},
    )


def chrono_split(dataset: Dataset, max_history: int = 10, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Split:
    """Global time order needs real timestamps; order-only data (Amazon LOO files) is refused."""
    if dataset.meta.get("timestamp_kind") != "unix":
        raise InvalidInputError(
            f"chrono811 needs real timestamps; dataset '{dataset.name}' only has sequence order", field="timestamp"
        )
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise InvalidInputError(f"fractions must sum to 1, got {fractions}", field="fractions")
    inter = dataset.interactions
    seqs = dataset.sequences()
    # position of each row inside its user's sequence; rows are grouped by user in time order
    pos = inter.groupby("user_id", sort=False).cumcount().to_numpy()
    samples = pd.DataFrame({"user_id": inter["user_id"].to_numpy(), "pos": pos, "timestamp": inter["timestamp"].to_numpy()})
    samples = samples[samples["pos"] > 0]  # a sample needs at least one previous item
    samples = samples.sort_values(["timestamp", "user_id", "pos"], kind="stable").reset_index(drop=True)
    n = len(samples)
    n_train = int(round(n * fractions[0]))
    n_valid = int(round(n * fractions[1]))
    bounds = {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, n)}

    def make(lo: int, hi: int) -> QuerySet:
        part = samples.iloc[lo:hi]
        hist = [seqs[u][max(0, p - max_history): p] for u, p in zip(part["user_id"], part["pos"])]
        tgt = np.asarray([seqs[u][p] for u, p in zip(part["user_id"], part["pos"])], dtype=np.int64)
        return QuerySet(part["user_id"].to_numpy(), hist, tgt)

    train_q = make(*bounds["train"])
    # training sequences: each user's interactions up to their last training target
    last = samples.iloc[: n_train].groupby("user_id")["pos"].max()
    tr_users = last.index.to_numpy()
    tr_seqs = [seqs[u][: p + 1] for u, p in zip(tr_users, last.to_numpy())]
    split = Split(
        "chrono811",
        SequenceSet(tr_users.astype(np.int64), tr_seqs, dataset.n_items),
        make(*bounds["valid"]),
        make(*bounds["test"]),
        n_items=dataset.n_items,
        exclude_seen=False,
        params={"max_history": max_history, "fractions": list(fractions), "train_samples": len(train_q)},
    )
    return split


def given_split(dataset: Dataset) -> Split:
    """The source's own split (a `split` column of train / valid / test per interaction), kept
    instead of re-splitting. Training sequences are each user's train rows in time order; every
    valid or test row is a query whose history is all of that user's earlier rows (any label). A
    query with no earlier row is kept (the model's no-history fallback is scored, and counted)."""
    inter = dataset.interactions
    if "split" not in inter.columns:
        raise InvalidInputError("the dataset has no split column (prepare it with --mapping ...,split=COLUMN)", field="split")
    seqs = dataset.sequences()
    pos = inter.groupby("user_id", sort=False).cumcount().to_numpy()
    users = inter["user_id"].to_numpy()
    labels = inter["split"].to_numpy()

    def queries(label: str) -> QuerySet:
        idx = np.flatnonzero(labels == label)
        return QuerySet(users[idx].astype(np.int64), [seqs[u][:p] for u, p in zip(users[idx], pos[idx])],
                        np.asarray([seqs[u][p] for u, p in zip(users[idx], pos[idx])], dtype=np.int64))

    train_rows = inter[labels == "train"]
    grouped = train_rows.groupby("user_id", sort=True)["item_id"]
    tr_users = np.asarray(list(grouped.groups.keys()), dtype=np.int64)
    tr_seqs = [g.to_numpy(dtype=np.int64) for _, g in grouped]
    valid, test = queries("valid"), queries("test")
    if len(test) == 0:
        raise InvalidInputError("the split column labels no row 'test'", field="split")
    return Split("given", SequenceSet(tr_users, tr_seqs, dataset.n_items), valid, test, n_items=dataset.n_items, exclude_seen=False,
                 params={"source": "split column", "no_history_queries": int(sum(len(h) == 0 for h in valid.histories + test.histories))})

