"""Recommender core on Amazon Beauty leave-one-out (TIGER protocol), full ranking, next to the
published numbers; codebooks compared by downstream NDCG@10.

Run: .venv/bin/python benchmarks/bench_recmodels.py [--runs sasrec:0,sasrec:1,lazy-letter:0 ...] [--minutes 15]
Each run is its own subprocess (own peak RSS), 2 CPU threads, and is capped at --minutes of training.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, print_table, require_shared, rss_mb, write_results

PUBLISHED = [
    {"method": "TIGER (paper)", "recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384},
    {"method": "SASRec (TIGER's table)", "recall@5": 0.0387, "ndcg@5": 0.0249, "recall@10": 0.0605, "ndcg@10": 0.0318},
    {"method": "DiffGRM (paper)", "ndcg@10": 0.0502},
]
# run name -> (method, sid spec, config overrides)
RUNS = {
    "popularity": ("popularity", None, {}),
    "itemknn": ("itemknn", None, {}),
    "sasrec": ("sasrec", None, {"dim": 64, "max_len": 20, "dropout": 0.3, "lr": 1e-3, "batch_size": 256, "epochs": 200, "patience": 8}),
    "lazy-letter": ("lazy", "published:published", {"dim": 128, "n_decoder_layers": 4, "epochs": 200, "patience": 4}),
    "lazy-cf-balanced": ("lazy", "cf:balanced", {"dim": 128, "n_decoder_layers": 4, "epochs": 200, "patience": 4}),
    "lazy-cf-rqkmeans": ("lazy", "cf:rqkmeans", {"dim": 128, "n_decoder_layers": 4, "epochs": 200, "patience": 4}),
    "tiger-letter": ("tiger", "published:published", {"dim": 128, "n_encoder_layers": 4, "n_decoder_layers": 4, "epochs": 200, "patience": 4}),
}


def one(name: str, seed: int, minutes: float, prepared: Path, sid_root: Path) -> dict:
    import torch

    from recsage.datasets import Dataset
    from recsage.pipelines.sid import build_semantic_ids
    from recsage.pipelines.train import train_recommender

    torch.set_num_threads(2)
    method, sid, params = RUNS[name]
    if method in ("sasrec", "lazy", "tiger"):
        params = {**params, "max_train_seconds": minutes * 60, "progress": False}
    if sid and sid.startswith("cf:"):
        qmethod = sid.split(":")[1]
        out = sid_root / f"cf-{qmethod}"
        if not (out / "sids.parquet").exists():
            build_semantic_ids(Dataset.load(prepared), method=qmethod, source="cf", levels=3, codes=256, collision="reassign", out=out)
        sid = str(out)
    t = time.perf_counter()
    _, row = train_recommender(method, prepared, sid=sid, seed=seed, ks=(5, 10, 20), **params)
    row.update({"run": name, "seconds": round(time.perf_counter() - t, 1), "peak_mb": round(rss_mb())})
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="popularity:0,itemknn:0,sasrec:0,lazy-letter:0,lazy-cf-balanced:0,lazy-cf-rqkmeans:0")
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=str(REPO / ".recsage" / "bench"))
    a = ap.parse_args()
    work = Path(a.workdir)
    prepared = work / "beauty"
    if a.one:
        name, seed = a.one.split(":")
        Path(a.out).write_text(json.dumps(one(name, int(seed), a.minutes, prepared, work / "sid")))
        return
    if not (prepared / "dataset.json").exists():
        from recsage.pipelines import prepare_dataset

        prepare_dataset("beauty", require_shared() / "amazon-beauty", prepared)
    results_path = REPO / "benchmarks" / "results" / "bench_recmodels.json"
    rows = json.loads(results_path.read_text()) if results_path.exists() else []
    for spec in a.runs.split(","):
        print(f"== {spec}", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, __file__, "--one", spec, "--out", f.name, "--minutes", str(a.minutes), "--workdir", str(work)], check=True)
            row = json.loads(Path(f.name).read_text())
        rows = [r for r in rows if not (r.get("run") == row["run"] and r.get("seeds") == row["seeds"])] + [row]
        write_results("bench_recmodels", rows)  # after every run: a long benchmark keeps what it finished
    cols = ["run", "seeds", "recall@5", "ndcg@5", "recall@10", "ndcg@10", "coverage@10", "train_seconds", "epochs_run", "ms_per_user", "beam_size", "peak_mb"]
    print_table(rows + PUBLISHED, cols, "Beauty, leave-one-out, full ranking, exclude_seen=True, 22,363 test users")


if __name__ == "__main__":
    main()
