"""SOLAR's SVD-attention (recsage.recmodels.svd_attention) against full softmax attention.

Two parts:
- curve: time and peak memory of one causal forward + backward for N = 256 … 16,384 on 2 CPU
  threads — full attention materialised (what SASRec's masked nn.MultiheadAttention computes),
  torch's fused causal kernel (scaled_dot_product_attention), and SVD-attention at r = 16 / 32 / 64.
  One user's sequence, 2 heads of 32 dims (SASRec's width 64). Each (method, N) runs in its own
  process (its own peak RSS); seeds 0–2 are three random inputs.
- quality: SASRec on MovieLens-100K (leave-one-out, window 200: users have ~104 ratings), full vs
  SVD-attention trained from the same data-derived defaults — the rows come from
  `bench_recmodels.py --runs ml100k/sasrec-auto:S,ml100k/sasrec-svd-auto:S,ml100k/sasrec-svd-local-auto:S` — plus the drop-in:
  each full-attention model re-scored with SVD-attention swapped in, no retraining.

Run: .venv/bin/python benchmarks/bench_solar.py [--part curve|quality|all] [--lengths 256,...] [--seeds 0,1,2]
Writes results/bench_solar.json (flat rows: dataset, method, n, metrics, seconds, peak_mb, seed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, RESULTS, print_table, rss_mb, write_results

LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384)
METHODS = ("full", "sdpa", "svd-16", "svd-32", "svd-64", "svd-32+local-32")
RUNS = {"sasrec-auto": "full", "sasrec-svd-auto": "svd-32", "sasrec-svd-local-auto": "svd-32+local-32"}


def point(method: str, n: int, seeds: list[int]) -> list[dict]:
    """One (method, N): fwd + bwd seconds per seed, and the extra peak RSS over the inputs."""
    import torch

    from recsage.recmodels.svd_attention import full_attention, svd_attention

    torch.set_num_threads(2)

    def run(q, k, v):
        if method == "full":
            return full_attention(q, k, v)
        if method == "sdpa":
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        rank, _, local = method.removeprefix("svd-").partition("+local-")
        return svd_attention(q, k, v, rank=int(rank), local=int(local or 0))

    def inputs(seed):
        g = torch.Generator().manual_seed(seed)
        return [torch.randn(2, n, 32, generator=g).requires_grad_() for _ in range(3)]

    if n <= 4096:  # warm-up (kernels, allocator) where it is cheap
        run(*inputs(99)).sum().backward()
    base = rss_mb()
    rows = []
    for seed in seeds:
        q, k, v = inputs(seed)
        t = time.perf_counter()
        run(q, k, v).sum().backward()
        rows.append({"dataset": "synthetic-timing", "method": method, "n": n, "seed": seed, "seconds": round(time.perf_counter() - t, 4)})
    for r in rows:
        r["peak_mb"] = round(rss_mb() - base, 1)
    return rows


def curve(lengths: list[int], seeds: list[int]) -> list[dict]:
    rows = []
    for n in lengths:
        for method in METHODS:
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                done = subprocess.run([sys.executable, __file__, "--point", f"{method}:{n}", "--seeds", ",".join(map(str, seeds)), "--out", f.name])
                if done.returncode:
                    rows.append({"dataset": "synthetic-timing", "method": method, "n": n, "seed": None, "error": f"exit {done.returncode}"})
                    continue
                rows += json.loads(Path(f.name).read_text())
            print(rows[-1], flush=True)
    return rows


def quality(seeds: list[int], swaps=((16, 0), (32, 0), (64, 0), (32, 32))) -> list[dict]:
    """The trained rows of bench_recmodels, and the drop-in re-scoring of the full-attention models."""
    import dataclasses

    import torch

    from recsage.evaluation import evaluate
    from recsage.pipelines.data import load_split
    from recsage.recmodels import SASRec

    torch.set_num_threads(2)
    trained = [r for r in json.loads((RESULTS / "bench_recmodels.json").read_text())
               if r.get("dataset") == "movielens-100k" and r.get("run") in RUNS and r["seeds"][0] in seeds]
    rows = [{"dataset": "movielens-100k", "method": r["run"], "seed": r["seeds"][0], "attention": RUNS[r["run"]],
             "recall@10": r["recall@10"], "ndcg@10": r["ndcg@10"], "train_seconds": r["train_seconds"], "epochs_run": r["epochs_run"],
             "ms_per_user": r["ms_per_user"], "seconds": r["seconds"], "peak_mb": r["peak_mb"]} for r in trained]
    work = REPO / ".recsage" / "bench"
    _, split = load_split(work / "ml100k", "loo")
    for seed in seeds:
        saved = work / "runs" / f"ml100k-sasrec-auto-{seed}" / "model"
        if not saved.exists():
            print(f"no trained full-attention model for seed {seed} at {saved}: run bench_recmodels first")
            continue
        full = SASRec.from_pretrained(saved)
        for rank, local in swaps:
            swapped = SASRec(dataclasses.replace(full.config, attention="svd", attention_rank=rank, attention_local=local))
            swapped._build(full.n_items_)
            swapped.module_.load_state_dict(full.module_.state_dict())
            swapped.module_.eval()
            swapped.popularity_ = full.popularity_
            t = time.perf_counter()
            m = evaluate(swapped, split.test, (10,), n_items=split.n_items, exclude_seen=split.exclude_seen, progress=False)
            s = time.perf_counter() - t
            name = f"svd-{rank}" + (f"+local-{local}" if local else "")
            rows.append({"dataset": "movielens-100k", "method": f"sasrec-auto, {name} swapped in (no retraining)", "seed": seed,
                         "attention": name, "recall@10": m["recall@10"], "ndcg@10": m["ndcg@10"],
                         "ms_per_user": round(1000 * s / len(split.test), 2), "seconds": round(s, 1), "peak_mb": round(rss_mb())})
    return rows


def summarise(rows: list[dict]) -> None:
    import numpy as np

    timing = [r for r in rows if r["dataset"] == "synthetic-timing" and "seconds" in r and r.get("seed") is not None]
    table = []
    for n in sorted({r["n"] for r in timing}):
        row = {"N": n}
        for method in METHODS:
            these = [r for r in timing if r["n"] == n and r["method"] == method]
            if these:
                s = np.array([r["seconds"] for r in these])
                row[f"{method} s"] = f"{s.mean():.3f} ±{s.std():.3f}"
                row[f"{method} MB"] = round(max(r["peak_mb"] for r in these))
        table.append(row)
    cols = ["N"] + [f"{m} {u}" for m in METHODS for u in ("s", "MB")]
    if table:
        print_table(table, cols, "one causal forward + backward, batch 1 × 2 heads × 32 dims, 2 threads (mean ± std over seeds; MB = extra peak RSS)")
    qual = [r for r in rows if r["dataset"] == "movielens-100k"]
    groups: dict[str, list[dict]] = {}
    for r in qual:
        groups.setdefault(r["method"], []).append(r)
    out = []
    for method, rs in groups.items():
        row = {"method": method, "n_seeds": len(rs)}
        for m in ("recall@10", "ndcg@10", "train_seconds", "ms_per_user"):
            v = np.array([r[m] for r in rs if r.get(m) is not None])
            if len(v):
                row[m] = f"{v.mean():.4f} ±{v.std():.4f}" if m in ("recall@10", "ndcg@10") else f"{v.mean():.1f}"
        out.append(row)
    if out:
        print_table(out, ["method", "n_seeds", "recall@10", "ndcg@10", "train_seconds", "ms_per_user"],
                    "MovieLens-100K, leave-one-out, full ranking, window 200 (mean ± std over seeds)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="all", choices=["curve", "quality", "all"])
    ap.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--point", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.point:
        method, n = a.point.split(":")
        Path(a.out).write_text(json.dumps(point(method, int(n), seeds)))
        return
    path = RESULTS / "bench_solar.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    if a.part in ("curve", "all"):
        rows = [r for r in rows if r["dataset"] != "synthetic-timing"] + curve([int(n) for n in a.lengths.split(",")], seeds)
        write_results("bench_solar", rows)
    if a.part in ("quality", "all"):
        rows = [r for r in rows if r["dataset"] != "movielens-100k"] + quality(seeds)
        write_results("bench_solar", rows)
    summarise(rows)


if __name__ == "__main__":
    main()
