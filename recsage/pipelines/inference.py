"""Use a saved recommender: top-K for one user, for many users or user-supplied histories, and
(history, target) queries from a file for `evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset
from recsage.datasets.splits import QuerySet
from recsage.pipelines.train import load_model


def raw_item_index(dataset: Dataset) -> dict[str, int]:
    """Raw item id (as text) → internal id: how users name items in their own files."""
    return {str(r): int(i) for r, i in zip(dataset.items["raw_id"], dataset.items["item_id"])}


def _known_items(raw_ids: list, item_of_raw: dict[str, int], field: str, where: dict[str, str]) -> np.ndarray:
    """Raw ids from a user's file as internal ids; an unknown one names the file, line and field."""
    unknown = [x for x in raw_ids if str(x) not in item_of_raw]
    if unknown:
        raise InvalidInputError(f"unknown item id(s) {unknown[:3]}", field=field, **where)
    return np.array([item_of_raw[str(x)] for x in raw_ids], dtype=np.int64)


def recommend_for_user(model_dir: str | Path, prepared: str | Path, user_id: int, k: int = 10) -> dict[str, Any]:
    """Top-k with titles for one user of the prepared dataset (history = all their interactions)."""
    model = load_model(model_dir)
    ds = Dataset.load(prepared)
    if not 0 <= user_id < ds.n_users:
        raise InvalidInputError(f"unknown user {user_id} (0..{ds.n_users - 1})", field="user")
    hist = ds.sequences()[user_id]
    ids, scores = model.recommend([hist], k=k)
    titles = ds.items.set_index("item_id")["title"]
    recs = [{"rank": r + 1, "item_id": int(i), "title": str(titles.loc[i]), "score": float(s)} for r, (i, s) in enumerate(zip(ids[0], scores[0])) if i >= 0]
    return {"user": user_id, "history": [str(titles.loc[i]) for i in hist[-10:]], "recommendations": recs,
            "cold_start_fallback": bool(getattr(model, "cold_fallbacks_", 0))}


def queries_from_file(path: str | Path, dataset: Dataset) -> QuerySet:
    """User-supplied (history, target) rows — JSONL {"history": [raw item ids, oldest first],
    "target": raw item id} — as a QuerySet over the dataset's items, so a user's own protocol can
    be scored by `evaluate`. An unknown item names the file, line and field."""
    from recsage.datasets.tabular import iter_jsonl

    item_of_raw = raw_item_index(dataset)
    histories, targets = [], []
    for lineno, row in iter_jsonl(Path(path)):
        where = {"file": str(path), "record": f"line {lineno}"}
        if not isinstance(row.get("history"), list):
            raise InvalidInputError("needs a \"history\" list of raw item ids", field="history", **where)
        if "target" not in row:
            raise InvalidInputError("needs a \"target\" raw item id", field="target", **where)
        histories.append(_known_items(row["history"], item_of_raw, "history", where))
        targets.append(int(_known_items([row["target"]], item_of_raw, "target", where)[0]))
    if not targets:
        raise InvalidInputError("no queries", file=str(path))
    return QuerySet(np.arange(len(targets)), histories, np.asarray(targets, dtype=np.int64))


def recommend_batch(model_dir: str | Path, prepared: str | Path, *, users: str | Path | None = "all", histories: str | Path | None = None,
                    k: int = 10, include_seen: bool = False, out: str | Path, batch_size: int = 1024, progress: bool = True) -> dict[str, Any]:
    """Top-k for many users at once, written to `out` (.parquet, .csv or .jsonl; one row per user ×
    rank: `query`, `rank`, `item` (raw id), `title`, `score`).

    `users`: "all" (every user of the prepared dataset, history = all their interactions) or a
    file whose `user` column holds raw user ids. `histories`: instead, a JSONL file of
    {"id": …, "history": [raw item ids, oldest first]} rows, for histories the dataset does not have.
    Unknown ids are errors naming the file and line; nothing is written then."""
    from tqdm.auto import tqdm

    from recsage.datasets.tabular import iter_jsonl, read_table, record_label, require_columns

    out = Path(out)
    if out.suffix not in (".parquet", ".csv", ".jsonl"):
        raise InvalidInputError("output must end in .parquet, .csv or .jsonl", file=str(out))
    ds = Dataset.load(prepared)
    if histories is not None:
        item_of_raw = raw_item_index(ds)
        queries, hists = [], []
        for lineno, row in iter_jsonl(Path(histories)):
            where = {"file": str(histories), "record": f"line {lineno}"}
            if not isinstance(row.get("history"), list):
                raise InvalidInputError("each line needs a \"history\" list of raw item ids", field="history", **where)
            queries.append(str(row.get("id", lineno)))
            hists.append(_known_items(row["history"], item_of_raw, "history", where))
    else:
        seqs = ds.sequences()
        user_of_raw = {str(r): int(u) for r, u in zip(ds.users["raw_id"], ds.users["user_id"])}
        if users is None or str(users) == "all":
            chosen = list(range(ds.n_users))
        else:
            table = read_table(users, dtype=str)
            require_columns(table, ["user"], file=str(users))  # raw user ids
            chosen = []
            for pos, raw in enumerate(table["user"].astype(str)):
                if raw not in user_of_raw:
                    raise InvalidInputError(f"unknown user {raw!r}", file=str(users), record=record_label(table, pos), field="user")
                chosen.append(user_of_raw[raw])
        raw_users = ds.users.set_index("user_id")["raw_id"].astype(str)
        queries = [raw_users.loc[u] for u in chosen]
        hists = [seqs[u] for u in chosen]
    model = load_model(model_dir)
    raw_items = ds.items.set_index("item_id")["raw_id"].astype(str)
    titles = ds.items.set_index("item_id")["title"].astype(str)
    rows: list[dict[str, Any]] = []
    cold = 0  # queries without history
    for lo in tqdm(range(0, len(hists), batch_size), desc="recommend", unit="batch", disable=not progress):
        ids, scores = model.recommend(hists[lo : lo + batch_size], k=k, exclude_seen=not include_seen)
        cold += sum(len(h) == 0 for h in hists[lo : lo + batch_size])  # no history: the model's popularity fallback
        for q, row_ids, row_scores in zip(queries[lo : lo + batch_size], ids, scores):
            rows += [{"query": q, "rank": r + 1, "item": raw_items.loc[i], "title": titles.loc[i], "score": float(sc)}
                     for r, (i, sc) in enumerate(zip(row_ids, row_scores)) if i >= 0]
    frame = pd.DataFrame(rows, columns=["query", "rank", "item", "title", "score"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    elif out.suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    tmp.replace(out)  # all or nothing
    return {"queries": len(hists), "rows": len(frame), "empty_histories": cold, "out": str(out)}
