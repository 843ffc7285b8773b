"""Jobs over user shards: histories as a Parquet directory partitioned by user, one shard per
`BatchJob` record, so the ranking stage (`recommend_shards`) and the user feature table
(`build_user_feature_shards`) need one shard's users in memory at a time and run on Ray
(`--engine ray`) with the same resume semantics as LLM jobs: a shard's output file is written
atomically before its line, so a finished line always means a complete file, and a re-run after
a kill skips finished shards.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.llm.batch import BatchJob, EngineConfig
from recsage.llm.tasks import BuiltOnce
from recsage.pipelines.data import load_split

HISTORY_COLUMNS = ("user_id", "history")
TRAINING_COLUMNS = ("user_id", "user_key", "history")


def write_history_shards(prepared: str | Path, out_dir: str | Path, *, protocol: str = "loo", n_shards: int = 8, queries: str = "test") -> dict[str, Any]:
    """The split's `queries` histories as `n_shards` Parquet files, users assigned by `user_id %
    n_shards` — the layout a data lake partitioned by user already has. `test` | `valid`: the
    histories the ranking stage recommends from; `train`: each user's training sequence with what
    the user feature table needs (raw key, last training time, profile roles where known)."""
    if n_shards < 1:
        raise InvalidInputError(f"n_shards must be at least 1, got {n_shards}", field="n_shards")
    dataset, split = load_split(prepared, protocol)
    if queries == "train":
        frame = training_history_frame(dataset, split)
    else:
        qs = {"test": split.test, "valid": split.valid}.get(queries)
        if qs is None:
            raise InvalidInputError("queries must be 'test', 'valid' or 'train'", field="queries")
        frame = pd.DataFrame({"user_id": np.asarray(qs.user_ids, dtype=np.int64),
                              "history": [np.asarray(h, dtype=np.int64).tolist() for h in qs.histories]})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for k in range(n_shards):
        frame[frame["user_id"] % n_shards == k].to_parquet(out / f"part-{k:05d}.parquet", index=False)
    return {"users": len(frame), "shards": n_shards, "queries": queries, "dir": str(out)}


def training_history_frame(dataset: Any, split: Any) -> pd.DataFrame:
    """One row per training user: user_id, user_key, history (the training sequence), and where
    the data has them last_timestamp (unix s) and profile_roles."""
    from recsage.pipelines.features import training_view

    train = training_view(dataset, split)
    uid = np.asarray(train.user_ids, dtype=np.int64)
    keys = dataset.users.set_index("user_id")["raw_id"].astype(str) if dataset.users is not None else None
    frame = pd.DataFrame({"user_id": uid, "user_key": [keys.get(int(u), str(u)) if keys is not None else str(u) for u in uid],
                          "history": [np.asarray(h, dtype=np.int64).tolist() for h in train.sequences]})
    if train.last_timestamp is not None:
        frame["last_timestamp"] = np.asarray(train.last_timestamp, dtype=np.int64)
    profiles = _profile_roles(dataset)
    if profiles:
        frame["profile_roles"] = [profiles.get(int(u), []) for u in uid]
    return frame


def _profile_roles(dataset: Any) -> dict[int, list[str]]:
    from recsage.pipelines.tagcf import user_role_labels

    users = dataset.users
    if users is None or not len(users) or not any(c in users for c in ("occupation", "age_band", "gender")):
        return {}
    labels = user_role_labels(dataset).set_index("user_id")
    return {int(u): [str(v) for v in row.values] for u, row in labels.iterrows()}


def read_history_shard(path: str | Path) -> tuple[np.ndarray, list[np.ndarray]]:
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise InvalidInputError(f"not a readable Parquet file ({e})", file=str(path)) from None
    missing = [c for c in HISTORY_COLUMNS if c not in frame]
    if missing:
        raise InvalidInputError(f"a history shard needs columns {list(HISTORY_COLUMNS)}; missing {missing}", file=str(path), field=missing[0])
    histories = []
    for i, h in enumerate(frame["history"]):
        if h is None or not len(h):
            raise InvalidInputError("empty history", file=str(path), record=i, field="history")
        histories.append(np.asarray(h, dtype=np.int64))
    return frame["user_id"].to_numpy(), histories


def _shard_files(shards_dir: str | Path) -> list[Path]:
    shards = sorted(Path(shards_dir).glob("*.parquet"))
    if not shards:
        raise InvalidInputError("no .parquet shards found", file=str(shards_dir))
    return shards


def _run_over_shards(shards: list[Path], out: Path, table: str, compute: Any, *, desc: str, engine: EngineConfig | None,
                     progress: bool) -> tuple[Any, list[dict[str, Any]]]:
    """`compute(shard_path) -> DataFrame` for every shard, each written atomically to
    `out/<table>/<shard name>` before the shard's line; resumable, on Ray with `engine`."""
    (out / table).mkdir(parents=True, exist_ok=True)

    def one(rec: dict[str, Any]) -> dict[str, Any]:
        frame = compute(rec["path"])
        target = out / table / rec["id"]
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)  # complete before the job writes this shard's line
        return {"users": int(len(frame)), "path": str(target)}

    job = BatchJob(out / "job", one, id_field="id", desc=desc, progress=progress, engine=engine)
    summary = job.run([{"id": p.name, "path": str(p)} for p in shards], total=len(shards))
    return summary, [r for r in job.results() if r["status"] == "ok"]


def recommend_shards(model_dir: str | Path, shards_dir: str | Path, out_dir: str | Path, *, k: int = 10, engine: EngineConfig | None = None,
                     progress: bool = True) -> dict[str, Any]:
    """Top-`k` of a saved ranking model (`recsage rank train --out`) for every user of every shard:
    `out_dir/recs/<shard>.parquet` (user_id, items, scores). The model is loaded once per process
    (in each Ray actor with `engine`)."""
    from recsage.features.two_stage import TwoStageRecommender

    shards = _shard_files(shards_dir)
    model_dir, out = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").exists():
        raise InvalidInputError("not a saved ranking model (no config.json); train one with `recsage rank train --out`", file=str(model_dir))
    model = BuiltOnce(lambda: TwoStageRecommender.from_pretrained(model_dir))

    def recommend(path: str) -> pd.DataFrame:
        users, histories = read_history_shard(path)
        ids, scores = model.get().recommend(histories, k=k)
        return pd.DataFrame({"user_id": users, "items": list(np.asarray(ids)), "scores": list(np.asarray(scores, dtype=np.float32))})

    t0 = time.perf_counter()
    summary, done = _run_over_shards(shards, out, "recs", recommend, desc="recommend shards", engine=engine, progress=progress)
    return {**summary.to_dict(), "shards": len(shards), "users": sum(r["result"]["users"] for r in done), "k": k,
            "engine": (engine or EngineConfig()).to_dict(), "seconds_total": round(time.perf_counter() - t0, 2)}


def build_user_feature_shards(features_dir: str | Path, shards_dir: str | Path, out_dir: str | Path, *, engine: EngineConfig | None = None,
                              progress: bool = True) -> dict[str, Any]:
    """The user feature table over training-history shards (`recsage rank write-shards --queries
    train`), one shard at a time: `out_dir/users/<shard>.parquet`, the same rows and columns
    `recsage features build` writes for those users (the item table, small, is read whole from
    `features_dir`; OneReason columns are not computed per shard). `out_dir/manifest.json` is the
    feature manifest with `tables.users` pointing at the shard directory."""
    from recsage.features.tables import load_tables

    shards = _shard_files(shards_dir)
    items, _, manifest = load_tables(features_dir)
    out = Path(out_dir)
    signals = _user_signals(manifest)
    created = pd.Timestamp(manifest["created"])
    cutoff = items["event_timestamp"].iloc[0] if len(items) else created

    def users_of(path: str) -> pd.DataFrame:
        return user_rows(read_training_shard(path, items), items, signals, cutoff, created)

    t0 = time.perf_counter()
    summary, done = _run_over_shards(shards, out, "users", users_of, desc="user features", engine=engine, progress=progress)
    n_users = sum(r["result"]["users"] for r in done)
    sharded = {**manifest, "tables": {"items": str(Path(features_dir).resolve() / "items.parquet"), "users": "users/"},
               "rows": {**manifest["rows"], "users": n_users},
               "absent": {**manifest["absent"], **({"cot": "not computed per shard"} if "cot" in manifest["groups"] else {})},
               "groups": {g: v for g, v in manifest["groups"].items() if g != "cot"},
               "sharded": {"histories": str(shards_dir), "shards": len(shards), "failed_shards": summary.new_failed}}
    (out / "manifest.json").write_text(json.dumps(sharded, indent=2, default=str))
    return {**summary.to_dict(), "shards": len(shards), "users": n_users, "engine": (engine or EngineConfig()).to_dict(),
            "seconds_total": round(time.perf_counter() - t0, 2)}


def _user_signals(manifest: dict[str, Any]) -> Any:
    """What the user table needs of the item-side signals, from the feature manifest (role graph)."""
    from recsage.features.tables import Signals

    g = manifest["groups"].get("tagcf") or {}
    sig = Signals(role_names=list(g.get("role_names") or []))
    if "topic_to_role" in g:
        sig.topic_to_role = np.asarray(g["topic_to_role"], dtype=np.float64)
    return sig


def read_training_shard(path: str | Path, items: pd.DataFrame) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise InvalidInputError(f"not a readable Parquet file ({e})", file=str(path)) from None
    for col in TRAINING_COLUMNS:
        if col not in frame:
            raise InvalidInputError(f"a training-history shard needs columns {list(TRAINING_COLUMNS)} (write it with "
                                    f"`recsage rank write-shards --queries train`); missing {col!r}", file=str(path), field=col)
    n = len(items)
    for i, h in enumerate(frame["history"]):
        if h is None or not len(h):
            raise InvalidInputError("empty history", file=str(path), record=i, field="history")
        if int(np.max(h)) >= n or int(np.min(h)) < 0:
            raise InvalidInputError(f"item id outside the item table's 0..{n - 1}: not the dataset these features were built for",
                                    file=str(path), record=i, field="history")
    return frame


def user_rows(frame: pd.DataFrame, items: pd.DataFrame, signals: Any, cutoff: Any, created: Any) -> pd.DataFrame:
    """The user table's rows for one shard's training histories (`features.tables` computes them)."""
    from recsage.features.tables import TrainingView, _user_table

    uid = frame["user_id"].to_numpy(dtype=np.int64)
    last = frame["last_timestamp"].to_numpy(dtype=np.int64) if "last_timestamp" in frame else None
    train = TrainingView(uid, [np.asarray(h, dtype=np.int64) for h in frame["history"]], len(items), last)
    profiles = ({int(u): [str(r) for r in rs] for u, rs in zip(uid, frame["profile_roles"])} if "profile_roles" in frame else None)
    keys = dict(zip(uid.tolist(), frame["user_key"].astype(str)))
    return _user_table(keys, train, replace(signals, user_profile_roles=profiles), items, cutoff, created, lambda *a: None)


def read_recommendations(out_dir: str | Path) -> pd.DataFrame:
    parts = sorted((Path(out_dir) / "recs").glob("*.parquet"))
    if not parts:
        return pd.DataFrame(columns=["user_id", "items", "scores"])
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).sort_values("user_id").reset_index(drop=True)
