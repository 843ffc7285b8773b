"""Recommender core next to the published numbers: Amazon Beauty leave-one-out (TIGER protocol)
and Amazon Scientific (text SIDs vs published indexes), full ranking; codebooks compared by
downstream NDCG@10.

Run: .venv/bin/python benchmarks/bench_recmodels.py [--runs beauty/sasrec:0,beauty/lazy-letter:0 ...] [--minutes 15]
Each run is its own subprocess (own peak RSS), 2 CPU threads, training capped at --minutes
(a run name may carry its own cap, e.g. beauty/tiger-letter@10:0). Results accumulate in
results/bench_recmodels.json (a re-run replaces the row of the same run and seed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, merge_results, print_table, require_shared, rss_mb, write_results

PUBLISHED = [
    {"run": "TIGER (paper)", "dataset": "beauty", "recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384},
    {"run": "SASRec (TIGER's table)", "dataset": "beauty", "recall@5": 0.0387, "ndcg@5": 0.0249, "recall@10": 0.0605, "ndcg@10": 0.0318},
    {"run": "DiffGRM (paper)", "dataset": "beauty", "ndcg@10": 0.0502},
    {"run": "SASRec + sampled softmax (eSASRec benchmark)", "dataset": "beauty", "recall@10": 0.0921, "ndcg@10": 0.0531},
    {"run": "eSASRec (paper)", "dataset": "beauty", "recall@10": 0.0928, "ndcg@10": 0.0523},
    {"run": "SASRec-CE, max len 50 (genrec re-run)", "dataset": "beauty", "recall@10": 0.0851, "ndcg@10": 0.0421},
]
DATA = {"beauty": ("beauty", "amazon-beauty"), "scientific": ("scientific", "amazon-scientific"), "ml100k": ("movielens-100k", "movielens-100k"),
        "allbeauty": ("amazon-reviews", "amazon-all-beauty-2018-reviews"),  # 2018 All Beauty 5-core: timestamps, so chrono811 too
        "sample": ("scientific", "scientific-sample")}  # the bundled sample (recsage's data/)
SASREC = {"dim": 64, "max_len": 20, "dropout": 0.3, "lr": 1e-3, "batch_size": 256, "epochs": 200, "patience": 8}
SASREC_COSINE = {**SASREC, "dropout": 0.2, "lr": 3e-3, "batch_size": 128, "lr_schedule": "cosine", "warmup_steps": 100, "epochs": 18, "patience": 30}
SASREC_SPARSE = {"dim": 64, "max_len": 20, "dropout": 0.2, "lr": 2e-3, "batch_size": 64, "epochs": 200, "patience": 10}
# generative models: cosine decay over the epochs that fit the time cap (measured epoch times on
# 2 cores: lazy ~90 s on Beauty, ~20 s on Scientific), so the budget ends on a decayed LR
# LAZY: the session-3 recipe (plain per-level softmax); LAZY_TRIE adds the softmax over the SID trie
# (the model default now) with label smoothing over the valid codes
LAZY = {"dim": 128, "n_decoder_layers": 2, "dropout": 0.1, "lr": 3e-3, "lr_schedule": "cosine", "warmup_steps": 200, "epochs": 9, "patience": 20,
        "trie_softmax": False}
LAZY_TRIE = {**LAZY, "trie_softmax": True, "label_smoothing": 0.1}
# TIGER-size encoder-decoder: one Beauty epoch measured at ~18 min on 2 cores (4+4 layers over ~80
# flattened SID tokens), so under a 15-minute cap the cosine runs over one epoch the budget cuts short
TIGER = {"dim": 128, "n_encoder_layers": 4, "n_decoder_layers": 4, "dropout": 0.1, "lr": 3e-3, "lr_schedule": "cosine", "warmup_steps": 200,
         "epochs": 1, "patience": 20, "trie_softmax": True, "label_smoothing": 0.1}
LAZY_SMALL_DATA = {**LAZY_TRIE, "epochs": 10}
SSMIX = {"loss": "sampled", "negatives": 1024, "negative_sampling": "mixed", "dropout": 0.2, "epochs": 80, "patience": 40}
SSMIX_CF = {**SSMIX, "dropout": 0.4, "epochs": 100}
TRAINED = ("sasrec", "lazy", "tiger", "diffgrm")  # torch models: capped at --minutes
# run name -> (method, sid spec, config overrides, side features)
RUNS = {
    "popularity": ("popularity", None, {}, None),
    "itemknn": ("itemknn", None, {}, None),
    "sasrec": ("sasrec", None, SASREC, None),
    "sasrec-sparse": ("sasrec", None, SASREC_SPARSE, None),
    "sasrec-cosine": ("sasrec", None, SASREC_COSINE, None),
    # no settings at all: every value chosen from the data (recmodels.defaults); the session-8 recipe
    # (padding masked and trimmed, positions on the items' scale, window 50, cosine LR over ≈4000 steps)
    "sasrec-auto": ("sasrec", None, {}, None),
    # the same, with SOLAR's SVD-attention (rank 32) in place of full attention (#20 part 3)
    "sasrec-svd-auto": ("sasrec", None, {"attention": "svd", "attention_rank": 32}, None),
    # and with the newest 32–63 behaviours attended exactly, older ones through the skeleton
    "sasrec-svd-local-auto": ("sasrec", None, {"attention": "svd", "attention_rank": 32, "attention_local": 32}, None),
    # sampled softmax (256 shared uniform negatives): a Beauty step 152 → 20 ms on 2 cores, so the
    # 15 minutes buy the long GPU recipes' epochs and their dropout .5
    "sasrec-ss-auto": ("sasrec", None, {"loss": "sampled", "negatives": 256, "dropout": 0.5, "epochs": 150, "patience": 40}, None),
    "sasrec-ss1k-auto": ("sasrec", None, {**SSMIX, "negative_sampling": "uniform"}, None),
    "sasrec-ssmix1k-auto": ("sasrec", None, SSMIX, None),
    # the same with collaborative side vectors (co-occurrence SVD of the training sequences) through the
    # side-info hook: at dropout .2 it overfits by epoch 11; at .4 it is the session-17 recipe that passes
    # item-kNN on Beauty (N@10 .0514 ±.0002, seeds 0-2; `recsage train sasrec --cf-features --set ...`)
    "sasrec-ssmix1k-cf-auto": ("sasrec", None, SSMIX, "cf"),
    "sasrec-ssmix1k-cf-d4-auto": ("sasrec", None, SSMIX_CF, "cf"),
    # ablations of that recipe: without the side vectors; with the full softmax (epochs from the data)
    "sasrec-ssmix1k-d4-auto": ("sasrec", None, SSMIX_CF, None),
    "sasrec-cf-d4-auto": ("sasrec", None, {"dropout": 0.4}, "cf"),
    # #20 part 4: the generative decoders with no --set flags, on a CF balanced codebook whose codes
    # per digit come from the catalogue size (`recsage sid fit` without --codes)
    "lazy-auto": ("lazy", "ours:cf:balanced:auto", {}, "cf"),
    "diffgrm-auto": ("diffgrm", "ours:cf:balanced:auto", {}, "cf"),
    "lazy-letter": ("lazy", "published:published", LAZY, None),
    "lazy-letter-cf": ("lazy", "published:published", LAZY, "cf"),
    "tiger-letter": ("tiger", "published:published", TIGER, None),
    "lazy-cf-balanced": ("lazy", "ours:cf:balanced", {**LAZY, "epochs": 8}, "cf"),
    "lazy-cf-balanced-d2": ("lazy", "ours:cf:balanced", {**LAZY, "epochs": 8, "dropout": 0.2}, "cf"),
    "lazy-cf-balanced-noid": ("lazy", "ours:cf:balanced", {**LAZY, "epochs": 8, "use_item_ids": False}, "cf"),
    "lazy-cf-balanced-ls": ("lazy", "ours:cf:balanced", {**LAZY, "epochs": 8, "label_smoothing": 0.1}, "cf"),
    "lazy-cf-balanced-trie": ("lazy", "ours:cf:balanced", {**LAZY_TRIE, "epochs": 12}, "cf"),
    "lazy-cf-balanced-hd": ("lazy", "ours:cf:balanced", {**LAZY_TRIE, "epochs": 12, "history_dropout": 0.15}, "cf"),
    "tiger-cf-balanced-hd": ("tiger", "ours:cf:balanced", {**TIGER, "history_dropout": 0.15}, "cf"),
    # DiffGRM (#20 part 2): the lazy-cf-balanced-hd recipe and codebook with the digit denoiser in
    # place of the autoregressive decoder; 6 epochs (≈ 80 s each with the on-policy noising pass) and
    # 500 validation users — session 14's CPU budget for three seeds, well inside the 15-minute cap;
    # then on the parallel (decoupled, variance-balanced) codebook
    "diffgrm-cf-balanced-hd": ("diffgrm", "ours:cf:balanced", {**LAZY_TRIE, "epochs": 6, "history_dropout": 0.15, "valid_users": 500}, "cf"),
    "diffgrm-cf-parallel-hd": ("diffgrm", "ours:cf:parallel", {**LAZY_TRIE, "epochs": 6, "history_dropout": 0.15, "valid_users": 500}, "cf"),
    "lazy-cf-balanced-4l": ("lazy", "ours:cf:balanced", {**LAZY_TRIE, "epochs": 10, "n_decoder_layers": 4}, "cf"),
    "lazy-cf-rqkmeans": ("lazy", "ours:cf:rqkmeans", {**LAZY, "epochs": 8}, "cf"),
    "lazy-text-balanced": ("lazy", "ours:text:balanced", LAZY_SMALL_DATA, "cf"),
    "lazy-text-rqkmeans": ("lazy", "ours:text:rqkmeans", LAZY_SMALL_DATA, "cf"),
    **{f"lazy-{idx}": ("lazy", f"published:{idx}", LAZY_SMALL_DATA, "cf") for idx in
       ("letter_native", "letter_zcr", "rqvae_native", "rqvae_zcr", "rkmeans_native", "rkmeans_zcr", "rkmeans_zcr_cf", "quasid_native", "quasid_zcr", "mql4grec")},
}


def prepared_dir(work: Path, dataset: str) -> Path:
    out = work / dataset
    if not (out / "dataset.json").exists():
        from recsage.pipelines import prepare_dataset

        kind, folder = DATA[dataset]
        prepare_dataset(kind, REPO / "data" / folder if dataset == "sample" else require_shared() / folder, out)
    return out


def one(dataset: str, name: str, seed: int, minutes: float, work: Path, threads: int = 2, protocol: str = "loo") -> dict:
    import torch

    from recsage.datasets import Dataset
    from recsage.pipelines.data import load_split
    from recsage.pipelines.sid import build_semantic_ids
    from recsage.pipelines.train import train_recommender
    from recsage.tokenizers.item_vectors import collaborative_vectors

    torch.set_num_threads(threads)
    prepared = prepared_dir(work, dataset)
    method, sid, params, side = RUNS[name]
    sid_spec = sid
    if method in TRAINED:
        params = {**params, "max_train_seconds": minutes * 60, "progress": False}
    if sid and sid.startswith("ours:"):
        _, source, qmethod, *auto = sid.split(":")  # "...:auto": codes per digit from the catalogue size
        out = work / "sid" / dataset / f"{source}-{qmethod}{'-auto' if auto else ''}"
        if not (out / "sids.parquet").exists():
            build_semantic_ids(Dataset.load(prepared), method=qmethod, source=source, levels=3, codes=None if auto else 256, collision="reassign", out=out)
        sid = str(out)
    ds, split = load_split(prepared, protocol)  # Amazon data has sequence order only: chrono811 applies to MovieLens
    # collaborative side information through the one side-info hook: co-occurrence SVD of the
    # *training* sequences only (no validation/test item leaks into it)
    side_features = collaborative_vectors(split.train.sequences, split.n_items, dim=64) if side == "cf" else None
    run_dir = work / "runs" / f"{dataset}-{name}-{seed}"  # the trained model is kept (re-score it, e.g. with a wider beam)
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run: never resume a checkpoint of older code
    t = time.perf_counter()
    _, row = train_recommender(method, prepared, sid=sid, seed=seed, ks=(5, 10, 20), dataset=ds, split=split, side_features=side_features,
                               out=run_dir, adapt_defaults=name.endswith("-auto"), **params)
    if dataset == "sample":  # the bundled sample loads as "scientific": keep its rows apart from the real one's
        row["dataset"] = "scientific-sample"
    row.update({"run": name, "sid": sid_spec, "side": side, "minutes_cap": minutes if method in TRAINED else None, "threads": threads,
                "seconds": round(time.perf_counter() - t, 1), "peak_mb": round(rss_mb())})
    return row


def run_key(row: dict) -> tuple:
    """What makes a results row one run: a re-run (or a merged file's row) replaces the row with the same key."""
    return tuple(str(row.get(k)) for k in ("run", "dataset", "seeds", "protocol"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="beauty/popularity:0,beauty/itemknn:0,beauty/sasrec:0,beauty/lazy-letter-cf:0,beauty/tiger-letter:0,"
                                      "beauty/lazy-cf-balanced:0")
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run (2 = the whole machine)")
    ap.add_argument("--results", default="bench_recmodels", help="results file name (exploratory runs: another name)")
    ap.add_argument("--protocol", default="loo", help="loo | chrono811 (datasets with timestamps)")
    ap.add_argument("--merge", default="", help="results files of parallel runs to merge into --results (no runs then)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=str(REPO / ".recsage" / "bench"))
    a = ap.parse_args()
    work = Path(a.workdir)
    if a.one:
        spec, seed = a.one.split(":")
        dataset, name = spec.split("/")
        Path(a.out).write_text(json.dumps(one(dataset, name, int(seed), a.minutes, work, a.threads, a.protocol)))
        return
    results_path = REPO / "benchmarks" / "results" / f"{a.results}.json"
    rows = json.loads(results_path.read_text()) if results_path.exists() else []
    if a.merge:
        rows = merge_results(rows, a.merge, run_key)
        write_results(a.results, rows)
    for spec in [] if a.merge else a.runs.split(","):
        print(f"== {spec}", flush=True)
        run_spec, minutes = spec, a.minutes
        if "@" in spec:  # per-run cap: beauty/tiger-letter@10:0
            head, tail = spec.split("@")
            mins, seed = tail.split(":")
            run_spec, minutes = f"{head}:{seed}", float(mins)
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, __file__, "--one", run_spec, "--out", f.name, "--minutes", str(minutes), "--workdir", str(work),
                            "--threads", str(a.threads), "--protocol", a.protocol], check=True)
            row = json.loads(Path(f.name).read_text())
        rows = [r for r in rows if run_key(r) != run_key(row)] + [row]
        write_results(a.results, rows)  # after every run: a long benchmark keeps what it finished
    cols = ["run", "protocol", "sid", "recall@5", "ndcg@5", "recall@10", "ndcg@10", "coverage@10", "train_seconds", "epochs_run", "ms_per_user", "peak_mb"]
    for dataset in sorted({r.get("dataset") for r in rows}, key=str):  # rows carry the dataset's own name (movielens-100k, all_beauty_5)
        these = [r for r in rows if r.get("dataset") == dataset]
        print_table(these + [r for r in PUBLISHED if r["dataset"] == dataset], cols, f"{dataset}, full ranking, seen items excluded")
    means = seed_means(rows)
    print_table(means, ["dataset", "protocol", "run", "n_seeds", "recall@10", "ndcg@10", "train_seconds"], "mean ± std over seeds")
    print_table(defaults_gap(means), ["dataset", "protocol", "model", "n_seeds", "ndcg@10", "popularity", "itemknn", "beats popularity", "gap to item-kNN"],
                "default-config models (no --set) against popularity and item-kNN, N@10")


def seed_means(rows: list[dict]) -> list[dict]:
    """One row per (dataset, protocol, run): mean ± std of the seeds' metrics."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("dataset"), r.get("protocol"), r.get("run")), []).append(r)
    out = []
    for (dataset, protocol, run), rs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        row = {"dataset": dataset, "protocol": protocol, "run": run, "n_seeds": len(rs), "train_seconds": round(float(np.mean([r.get("train_seconds", 0) for r in rs])))}
        for m in ("recall@10", "ndcg@10"):
            v = np.array([r[m] for r in rs])
            row[m] = f"{v.mean():.4f} ±{v.std():.4f}" if len(v) > 1 else f"{v.mean():.4f}"
            row[f"{m}_mean"] = float(v.mean())
        out.append(row)
    return out


DEFAULT_RUNS = ("sasrec-auto", "lazy-auto", "diffgrm-auto")  # `recsage train METHOD --data X` with no --set flags


def defaults_gap(means: list[dict]) -> list[dict]:
    """#20 part 4's table: per dataset and protocol, each default-config model's N@10 (mean over
    its seeds), whether it beats popularity, and its gap to item-kNN."""
    by = {(m["dataset"], m["protocol"], m["run"]): m for m in means}
    out = []
    for dataset, protocol in sorted({(m["dataset"], m["protocol"]) for m in means}, key=str):
        pop, knn = (by.get((dataset, protocol, r)) for r in ("popularity", "itemknn"))
        for run in DEFAULT_RUNS:
            auto = by.get((dataset, protocol, run))
            if auto is None:
                continue
            v = auto["ndcg@10_mean"]
            out.append({"dataset": dataset, "protocol": protocol, "model": run, "n_seeds": auto["n_seeds"], "ndcg@10": auto["ndcg@10"],
                        "popularity": None if pop is None else round(pop["ndcg@10_mean"], 4), "itemknn": None if knn is None else round(knn["ndcg@10_mean"], 4),
                        "beats popularity": None if pop is None else v > pop["ndcg@10_mean"],
                        "gap to item-kNN": None if knn is None else f"{(v / knn['ndcg@10_mean'] - 1):+.1%}"})
    return out


if __name__ == "__main__":
    main()
