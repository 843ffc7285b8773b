"""Prepare + validate every shared dataset; baselines on Beauty and Scientific leave-one-out.

Run: .venv/bin/python benchmarks/bench_datasets.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import measure, print_table, require_shared, write_results

from recsage.pipelines import prepare_dataset
from recsage.pipelines.data import load_split
from recsage.pipelines.recommend import evaluate_recommender

SOURCES = [
    ("beauty", "amazon-beauty"),
    ("scientific", "amazon-scientific"),
    ("movielens-100k", "movielens-100k"),
    ("movielens-1m", "movielens-1m"),
    ("upworthy", "upworthy"),
    ("youtube", "youtube-comment-likes"),
    ("reddit", "reddit-college-comments"),
    ("amazon-reviews", "amazon-all-beauty-2018-reviews/All_Beauty_5.json.gz"),
]
# Published reference points (shared/PROTOCOLS.md; TIGER's table, Beauty loo)
PUBLISHED = [
    {"dataset": "beauty", "method": "TIGER (paper)", "recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384},
    {"dataset": "beauty", "method": "SASRec (TIGER's table)", "recall@5": 0.0387, "ndcg@5": 0.0249, "recall@10": 0.0605, "ndcg@10": 0.0318},
]


def main() -> None:
    shared = require_shared()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, rel in SOURCES:
            row = {"bench": "prepare", "dataset": kind}
            with measure(row):
                s = prepare_dataset(kind, shared / rel, Path(tmp) / kind)
            row.update({k: s.get(k) for k in ("n_users", "n_items", "n_interactions", "n_comments", "n_experiments")})
            row["skipped_rows"] = s["validation"].get("n_skipped", 0)
            rows.append(row)
        print_table(rows, ["dataset", "n_users", "n_items", "n_interactions", "n_comments", "n_experiments", "skipped_rows", "seconds", "peak_mb"], "Prepare + validate (Parquet + splits)")

        base = []
        for kind in ("beauty", "scientific"):
            _, split = load_split(Path(tmp) / kind, "loo")
            for method in ("popularity", "itemknn"):
                row = {"bench": "baseline", "dataset": kind}
                with measure(row):
                    r = evaluate_recommender(method, split, ks=(5, 10, 20, 50), progress=False)
                row.update({k: v for k, v in r.items() if k not in ("seconds",)})
                base.append(row)
    cols = ["dataset", "method", "protocol", "recall@5", "ndcg@5", "recall@10", "ndcg@10", "coverage@10", "n_users", "seconds", "peak_mb"]
    print_table(base + PUBLISHED, cols, "Baselines, leave-one-out, full ranking, exclude_seen=True (published rows for reference)")
    write_results("bench_datasets", rows + base)


if __name__ == "__main__":
    main()
