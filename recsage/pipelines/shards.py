"""The ranking stage over user shards: histories as a Parquet directory partitioned by user, one
shard per `BatchJob` record, so recommending for a whole user base needs one shard's users in
memory at a time and runs on Ray (`--engine ray`) with the same resume semantics as LLM jobs:
a shard's output file is written atomically before its line, so a finished line always means a
complete file, and a re-run after a kill skips finished shards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.llm.batch import BatchJob, EngineConfig
from recsage.pipelines.data import load_split

HISTORY_COLUMNS = ("user_id", "history")


def write_history_shards(prepared: str | Path, out_dir: str | Path, *, protocol: str = "loo", n_shards: int = 8, queries: str = "test") -> dict[str, Any]:
    """The split's `queries` (test | valid) histories as `n_shards` Parquet files, users assigned by
    `user_id % n_shards` — the layout a data lake partitioned by user already has."""
    if n_shards < 1:
        raise InvalidInputError(f"n_shards must be at least 1, got {n_shards}", field="n_shards")
    _, split = load_split(prepared, protocol)
    qs = {"test": split.test, "valid": split.valid}.get(queries)
    if qs is None:
        raise InvalidInputError("queries must be 'test' or 'valid'", field="queries")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"user_id": np.asarray(qs.user_ids, dtype=np.int64), "history": [np.asarray(h, dtype=np.int64).tolist() for h in qs.histories]})
    for k in range(n_shards):
        frame[frame["user_id"] % n_shards == k].to_parquet(out / f"part-{k:05d}.parquet", index=False)
    return {"users": len(frame), "shards": n_shards, "dir": str(out)}


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


def recommend_shards(model_dir: str | Path, shards_dir: str | Path, out_dir: str | Path, *, k: int = 10, engine: EngineConfig | None = None,
                     progress: bool = True) -> dict[str, Any]:
    """Top-`k` of a saved ranking model (`recsage rank train --out`) for every user of every shard:
    `out_dir/recs/<shard>.parquet` (user_id, items, scores). The model is loaded once per process
    (in each Ray actor with `engine`)."""
    from recsage.features.two_stage import TwoStageRecommender

    shards = sorted(Path(shards_dir).glob("*.parquet"))
    if not shards:
        raise InvalidInputError("no .parquet shards found", file=str(shards_dir))
    model_dir, out = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").exists():
        raise InvalidInputError("not a saved ranking model (no config.json); train one with `recsage rank train --out`", file=str(model_dir))
    (out / "recs").mkdir(parents=True, exist_ok=True)
    loaded: dict[str, TwoStageRecommender] = {}

    def one(rec: dict[str, Any]) -> dict[str, Any]:
        model = loaded.get("m") or loaded.setdefault("m", TwoStageRecommender.from_pretrained(model_dir))
        users, histories = read_history_shard(rec["path"])
        ids, scores = model.recommend(histories, k=k)
        target = out / "recs" / rec["id"]
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        pd.DataFrame({"user_id": users, "items": list(np.asarray(ids)), "scores": list(np.asarray(scores, dtype=np.float32))}).to_parquet(tmp, index=False)
        os.replace(tmp, target)  # complete before the job writes this shard's line
        return {"users": int(len(users)), "path": str(target)}

    t0 = time.perf_counter()
    job = BatchJob(out / "job", one, id_field="id", desc="recommend shards", progress=progress, engine=engine)
    summary = job.run([{"id": p.name, "path": str(p)} for p in shards], total=len(shards))
    done = [r for r in job.results() if r["status"] == "ok"]
    return {**summary.to_dict(), "shards": len(shards), "users": sum(r["result"]["users"] for r in done), "k": k,
            "engine": (engine or EngineConfig()).to_dict(), "seconds_total": round(time.perf_counter() - t0, 2)}


def read_recommendations(out_dir: str | Path) -> pd.DataFrame:
    parts = sorted((Path(out_dir) / "recs").glob("*.parquet"))
    if not parts:
        return pd.DataFrame(columns=["user_id", "items", "scores"])
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).sort_values("user_id").reset_index(drop=True)
