"""Ranking stage (retrieve → rank) and what each signal is worth, on the same candidates.

Protocol: `loo` two-stage (shared/PROTOCOLS.md). Retrievers (item-kNN, collaborative-vector kNN,
MiniLM text kNN where items have text, SASRec) fit on each user's
s[:-2]; LambdaRank learns on validation queries (target s[-2]) and early-stops on 10% of those
users; it is scored on test queries (history s[:-1], target s[-1]), full catalogue, seen items
excluded, nothing refitted. Ablation: one candidate set and one feature matrix per seed, a ranker
per feature-group step (behaviour → + SID → + text → + TagCF → + every other signal present).

Run: .venv/bin/python benchmarks/bench_ranking.py [--datasets ml100k,scientific,beauty] [--seeds 0,1,2]
Each (dataset, seed) runs in its own subprocess (own peak RSS); rows accumulate in
results/bench_ranking.json after every run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REPO, SHARED, print_table, require_shared, rss_mb, write_results

DATA = {"beauty": ("beauty", "amazon-beauty"), "scientific": ("scientific", "amazon-scientific"), "ml100k": ("movielens-100k", "movielens-100k")}
# SASRec retriever recipes: the recommender benchmark's settings, with epochs cut to fit the cap
SASREC = {
    "beauty": {"dim": 64, "max_len": 20, "dropout": 0.2, "lr": 3e-3, "batch_size": 128, "lr_schedule": "cosine", "warmup_steps": 100, "epochs": 8, "patience": 30},
    "scientific": {"dim": 64, "max_len": 20, "dropout": 0.2, "lr": 2e-3, "batch_size": 64, "epochs": 200, "patience": 10},
    "ml100k": {"dim": 64, "max_len": 50, "dropout": 0.2, "lr": 1e-3, "batch_size": 128, "epochs": 200, "patience": 8},
}
SID_SOURCE = {"beauty": "cf", "scientific": "text", "ml100k": "text"}
STEPS = [("behaviour", ["behaviour"]), ("+ SID", ["behaviour", "sid"]), ("+ text", ["behaviour", "sid", "text"]),
         ("+ TagCF", ["behaviour", "sid", "text", "tagcf"]), ("all signals", ["behaviour", "sid", "text", "tagcf", "reward"])]
PUBLISHED = [
    {"method": "SASRec + sampled softmax (eSASRec benchmark)", "dataset": "beauty", "recall@10": 0.0921, "ndcg@10": 0.0531},
    {"method": "eSASRec (published)", "dataset": "beauty", "recall@10": 0.0928, "ndcg@10": 0.0523},
    {"method": "OneRec-SFT 1.7B (genrec re-run)", "dataset": "beauty", "recall@10": 0.0925, "ndcg@10": 0.0501},
    {"method": "DiffGRM (paper)", "dataset": "beauty", "ndcg@10": 0.0502},
    {"method": "TIGER (paper)", "dataset": "beauty", "recall@5": 0.0454, "ndcg@5": 0.0321, "recall@10": 0.0648, "ndcg@10": 0.0384},
]


def prepared(work: Path, key: str) -> Path:
    from recsage.pipelines import prepare_dataset

    kind, folder = DATA[key]
    out = work / key
    if not (out / "dataset.json").exists():
        prepare_dataset(kind, require_shared() / folder, out)
    return out


def reward_model(work: Path) -> Path:
    """One embedding Bradley–Terry reward model on the Upworthy pairs, shared by every run."""
    from recsage.pipelines.push import train_reward_model

    out = work / "reward"
    if not (out / "config.json").exists():
        train_reward_model(SHARED / "upworthy", out)
    return out


def tags_folder(work: Path, key: str, ds) -> Path | None:
    """Data-derived TagCF tags (categories/genres as topics; profile roles where the data has
    them) — no LLM tags in this run: the committed LLM-tag artifacts do not cover these items."""
    from recsage.pipelines.tagcf import build_vocabularies, tag_items

    if ds.items is None or "categories" not in ds.items or not any(len(c) for c in ds.items["categories"] if c is not None):
        return None
    out = work / "tags" / key
    if not (out / "item_tags.parquet").exists():
        build_vocabularies(ds, out, extend=False)
        tag_items(ds, out, out, limit=0, progress=False)
    return out


def one(key: str, seed: int, work: Path, minutes: float, n_candidates: int) -> list[dict]:
    import torch

    from recsage.core.seeding import set_seed
    from recsage.datasets import Dataset
    from recsage.evaluation import evaluate
    from recsage.features.pairs import PairFeaturizer
    from recsage.pipelines.data import load_split
    from recsage.pipelines.features import build_features, item_signals
    from recsage.pipelines.ranking import ablation, fit_retrievers
    from recsage.pipelines.sid import build_semantic_ids
    from recsage.recmodels import SASRec, SASRecConfig

    torch.set_num_threads(2)
    t_all = time.perf_counter()
    prep = prepared(work, key)
    ds, split = load_split(prep, "loo")
    sid_dir = work / "sid" / key
    if not (sid_dir / "sids.parquet").exists():
        build_semantic_ids(Dataset.load(prep), method="balanced", source=SID_SOURCE[key], levels=3, codes=256 if key == "beauty" else 64,
                           collision="reassign", out=sid_dir)
    feat_dir = work / "features" / key
    t = time.perf_counter()
    if not (feat_dir / "manifest.json").exists():
        tags = tags_folder(work, key, ds)
        reward = reward_model(work) if key != "beauty" else None  # Beauty here has no item titles to score
        build_features(prep, feat_dir, sid=sid_dir, tags=tags, reward=reward)
    features_s = time.perf_counter() - t
    rows: list[dict] = []
    base = {"dataset": key, "protocol": "loo", "exclude_seen": True, "seed": seed, "seeds": [seed], "n_users": len(split.test)}

    set_seed(seed)
    signals = item_signals(feat_dir, ds, split)
    t = time.perf_counter()
    # cheap retrievers: co-occurrence kNN, collaborative-vector kNN, and text kNN where items have text
    cheap = [("itemknn", None), ("cfknn", None)] + ([("textknn", None)] if signals.text_embedding is not None else [])
    fitted = fit_retrievers(cheap, split, signals)
    knn = fitted["itemknn"]
    knn_s = time.perf_counter() - t
    sas = SASRec(SASRecConfig(**SASREC[key], seed=seed, max_train_seconds=minutes * 60, progress=False))
    t = time.perf_counter()
    sas.fit(split.train, split.valid, exclude_seen=True)
    sas_s = time.perf_counter() - t
    for name, model, secs in (("item-kNN", knn, knn_s), ("SASRec (retriever)", sas, sas_s)):
        m = evaluate(model, split.test, (5, 10, 20), n_items=split.n_items, progress=False)
        rows.append({**base, "method": name, **{k: v for k, v in m.items() if k.startswith(("recall", "ndcg"))}, "train_seconds": round(secs, 1)})
    rows[-1]["epochs_run"] = sas.train_result_.epochs_run

    t = time.perf_counter()
    featurizer = PairFeaturizer(signals).fit_from(knn)
    present = {"behaviour"} | {g for g, a in (("sid", signals.sid_codes), ("text", signals.text_embedding), ("tagcf", signals.topics),
                                               ("reward", signals.reward)) if a is not None}
    steps, seen = [], set()
    for label, groups in STEPS:
        g = tuple(x for x in groups if x in present)
        if g not in seen:
            seen.add(g)
            steps.append((label, list(g)))
    retrievers = {**fitted, "sasrec": sas}
    abl = ablation(retrievers, featurizer, split, steps, n_candidates=n_candidates, seed=seed)
    for r in abl:
        rows.append({**base, **r, "retrievers": list(retrievers), "n_candidates": n_candidates})
    for r in rows:
        r.update({"seconds": round(time.perf_counter() - t_all, 1), "features_seconds": round(features_s, 1), "peak_mb": round(rss_mb()),
                  "rank_stage_seconds": round(time.perf_counter() - t, 1)})
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean ± std over seeds per (dataset, method)."""
    out = []
    keys = sorted({(r["dataset"], r["method"]) for r in rows if "seed" in r}, key=lambda k: (k[0], [r["method"] for r in rows].index(k[1])))
    for ds, method in keys:
        these = [r for r in rows if r.get("dataset") == ds and r.get("method") == method and "seed" in r]
        s = {"dataset": ds, "method": method, "seeds": sorted(r["seed"] for r in these)}
        for m in ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "recall@20", "ndcg@20", *(k for k in these[0] if k.startswith("candidate_recall"))):
            vals = [r[m] for r in these if m in r]
            if vals:
                s[m] = float(np.mean(vals))
                s[m + "_std"] = float(np.std(vals))
        s["seconds"] = float(np.mean([r["seconds"] for r in these]))
        s["peak_mb"] = max(r["peak_mb"] for r in these)
        out.append(s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="ml100k,scientific,beauty")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--minutes", type=float, default=5.0, help="SASRec retriever training cap per run")
    ap.add_argument("--candidates", type=int, default=100, help="top-N per retriever")
    ap.add_argument("--workdir", default=str(REPO / ".recsage" / "bench-ranking"))
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    work = Path(a.workdir)
    if a.one:
        key, seed = a.one.split(":")
        Path(a.out).write_text(json.dumps(one(key, int(seed), work, a.minutes, a.candidates), default=str))
        return
    path = REPO / "benchmarks" / "results" / "bench_ranking.json"
    rows = [r for r in (json.loads(path.read_text()) if path.exists() else []) if "seed" in r]
    for key in a.datasets.split(","):
        for seed in [int(s) for s in a.seeds.split(",")]:
            print(f"== {key} seed {seed}", flush=True)
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                subprocess.run([sys.executable, __file__, "--one", f"{key}:{seed}", "--out", f.name, "--workdir", str(work), "--minutes", str(a.minutes),
                                "--candidates", str(a.candidates)], check=True)
                new = json.loads(Path(f.name).read_text())
            rows = [r for r in rows if not (r["dataset"] == key and r["seed"] == seed)] + new
            write_results("bench_ranking", rows + [{**s, "summary": True} for s in summarise(rows)])
    rows = [r for r in rows if "seed" in r]
    cols = ["method", "recall@5", "ndcg@5", "recall@10", "recall@10_std", "ndcg@10", "ndcg@10_std", *(["candidate_recall@%d" % a.candidates]), "seconds", "peak_mb"]
    summary = summarise(rows)
    for key in DATA:
        these = [r for r in summary if r["dataset"] == key]
        if these:
            print_table(these + [r for r in PUBLISHED if r["dataset"] == key], cols,
                        f"{key}: leave-one-out two-stage, full catalogue, seen excluded, mean ± std over seeds {these[0]['seeds']}")


if __name__ == "__main__":
    main()
