"""Ranking stage (retrieve → rank) and what each signal is worth, on the same candidates.

Protocol: `loo` two-stage (shared/PROTOCOLS.md). Retrievers (item-kNN, collaborative-vector kNN,
user-kNN, EASE, MiniLM text kNN where items have text, SASRec) fit on each user's
s[:-2]; LambdaRank learns on validation queries (target s[-2]) for as many rounds as a user-level
3-fold CV on them picks (below 20,000 usable queries: every dataset here); it is scored on test queries (history s[:-1], target s[-1]), full catalogue, seen items
excluded, nothing refitted. Ablation: one candidate set and one feature matrix per seed, a ranker
per feature-group step (behaviour → + SID → + text → + TagCF → + every other signal present), and
last the ranker with its groups chosen by 3-fold CV on the validation queries (`--select-groups`).
TagCF tags: the committed LLM-tag artifact once it covers every item (ML-100K since session 22;
Scientific when its tagging run finishes), else data-derived ones; each row says which (`tags`).

Run: .venv/bin/python benchmarks/bench_ranking.py [--datasets ml100k,scientific,beauty] [--seeds 0,1,2] [--threads 1 --results NAME]
Each (dataset, seed) runs in its own subprocess (own peak RSS); rows accumulate in
results/bench_ranking.json after every run. Two runs at a time, one core each: give each its own
`--results` file and fold them in afterwards with `--merge NAME1,NAME2`.

The rows of results/bench_ranking.json: ML-100K and Scientific from session 25 (retrievers without
user-kNN and EASE, `retrievers` in each row), Beauty from session 26 (with them).
The SASRec retriever of each (dataset, seed) is saved under the workdir (`retrievers/`) and reused
by later runs with the same recipe and split (`retriever_reused` in its row), so a rerun that
changes features or the ranker skips the retriever's training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import REPO, SHARED, complete_llm_tags, merge_results, print_table, require_shared, rss_mb, write_results

DATA = {"beauty": ("beauty", "amazon-beauty"), "scientific": ("scientific", "amazon-scientific"), "ml100k": ("movielens-100k", "movielens-100k")}
# SASRec retriever: the recommender benchmark's session-17 recipe (sampled softmax over 1,024 mixed
# negatives, dropout .4, collaborative side vectors of the training sequences, every other setting
# from the data) — the one that passes item-kNN alone on Beauty and ML-100K. Until session 18 the
# retriever was a short fixed-window SASRec (Beauty N@10 .024), and the ranker's rows were measured on it.
SASREC = {"loss": "sampled", "negatives": 1024, "negative_sampling": "mixed", "dropout": 0.4, "epochs": 100, "patience": 40}
SASREC_RECIPE = "ssmix1k-cf-d4"
# fitted on the spot: co-occurrence item-kNN, collaborative-vector kNN, user-kNN and EASE (the last
# two since session 26: they raised Beauty's candidate recall@100 from .311 to .333)
CHEAP_RETRIEVERS = ("itemknn", "cfknn", "userknn", "ease")
SID_SOURCE = {"beauty": "cf", "scientific": "text", "ml100k": "text"}
STEPS = [("behaviour", ["behaviour"]), ("+ SID", ["behaviour", "sid"]), ("+ text", ["behaviour", "sid", "text"]),
         ("+ TagCF", ["behaviour", "sid", "text", "tagcf"]), ("all signals", ["behaviour", "sid", "text", "tagcf", "reward"])]
# plus "all signals, groups chosen on validation": the last step thinned by 3-fold CV on the validation queries (`select_groups`)
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


def tags_folder(work: Path, key: str, ds) -> tuple[Path | None, str]:
    """TagCF tags and where they come from: the committed LLM-tag artifact once it covers every
    item ("llm": LLM topics and roles merged with the categories/genres), else data-derived tags
    ("data": categories/genres as topics, profile roles where the data has them)."""
    from recsage.pipelines.tagcf import build_vocabularies, tag_items

    llm = complete_llm_tags(key)
    if llm is not None:
        return llm, "llm"
    if ds.items is None or "categories" not in ds.items or not any(len(c) for c in ds.items["categories"] if c is not None):
        return None, "none"
    out = work / "tags" / key
    if not (out / "item_tags.parquet").exists():
        build_vocabularies(ds, out, extend=False)
        tag_items(ds, out, out, limit=0, progress=False)
    return out, "data"


def sasrec_retriever(work: Path, key: str, seed: int, minutes: float, threads: int, prep: Path, ds, split) -> tuple[Any, dict]:
    """The SASRec retriever of (dataset, seed): trained once, then loaded from the workdir.

    Training is most of a run (Beauty, seed 0: 812 of 1,173 s) and deterministic for a seed while
    early stopping ends it (session 22 reproduced session 18's retriever exactly), so a rerun that
    changes only features or the ranker reuses the saved model and its metrics. The folder is keyed
    by recipe, training cap, torch threads and the split's fingerprint; a different recipe or dataset
    version trains anew. A run the cap cut short depends on the machine's speed too, so its row
    records `stopped_by_time`."""
    from recsage.pipelines.train import train_recommender
    from recsage.recmodels.sasrec import SASRec
    from recsage.tokenizers.item_vectors import collaborative_vectors

    tag = hashlib.sha256(json.dumps([SASREC, SASREC_RECIPE, minutes, threads, [list(map(int, s)) for s in split.train.sequences]]).encode()).hexdigest()[:12]
    folder = work / "retrievers" / f"{key}-sasrec-{SASREC_RECIPE}-seed{seed}-{tag}"
    if (folder / "row.json").exists():
        return SASRec.from_pretrained(folder), {**json.loads((folder / "row.json").read_text()), "reused": True}
    side = collaborative_vectors(split.train.sequences, split.n_items, dim=64)  # training sequences only
    sas, row = train_recommender("sasrec", prep, seed=seed, dataset=ds, split=split, side_features=side, adapt_defaults=True,
                                 **SASREC, max_train_seconds=minutes * 60, progress=False)
    done = sas.train_result_
    row = {k: v for k, v in row.items() if k.startswith(("recall", "ndcg")) or k == "train_seconds"} | {"epochs_run": done.epochs_run,
                                                                                                       "stopped_by_time": done.stopped_by_time}
    sas.save_pretrained(folder)
    (folder / "row.json").write_text(json.dumps(row))  # written last: its presence marks a complete folder
    return sas, {**row, "reused": False}


def one(key: str, seed: int, work: Path, minutes: float, n_candidates: int, threads: int = 2, select_groups: bool = False,
        cheap_retrievers: tuple[str, ...] = CHEAP_RETRIEVERS) -> list[dict]:
    import torch

    from recsage.core.seeding import set_seed
    from recsage.datasets import Dataset
    from recsage.evaluation import evaluate
    from recsage.features.pairs import PairFeaturizer
    from recsage.pipelines.data import load_split
    from recsage.pipelines.features import build_features, item_signals
    from recsage.pipelines.ranking import ablation, fit_retrievers
    from recsage.pipelines.sid import build_semantic_ids

    torch.set_num_threads(threads)
    t_all = time.perf_counter()
    prep = prepared(work, key)
    ds, split = load_split(prep, "loo")
    sid_dir = work / "sid" / key
    if not (sid_dir / "sids.parquet").exists():
        build_semantic_ids(Dataset.load(prep), method="balanced", source=SID_SOURCE[key], levels=3, codes=256 if key == "beauty" else 64,
                           collision="reassign", out=sid_dir)
    tags, tag_source = tags_folder(work, key, ds)
    feat_dir = work / "features" / f"{key}-tags-{tag_source}"  # a new tag source gets its own tables
    t = time.perf_counter()
    if not (feat_dir / "manifest.json").exists():
        reward = reward_model(work) if key != "beauty" else None  # Beauty here has no item titles to score
        build_features(prep, feat_dir, sid=sid_dir, tags=tags, reward=reward)
    features_s = time.perf_counter() - t
    rows: list[dict] = []
    base = {"dataset": key, "protocol": "loo", "exclude_seen": True, "seed": seed, "seeds": [seed], "n_users": len(split.test), "tags": tag_source}

    set_seed(seed)
    signals = item_signals(feat_dir, ds, split)
    t = time.perf_counter()
    # cheap retrievers (co-occurrence kNN first: the featurizer reads it), and text kNN where items have text
    cheap = [(r, None) for r in dict.fromkeys(("itemknn", *cheap_retrievers))] + ([("textknn", None)] if signals.text_embedding is not None else [])
    fitted = fit_retrievers(cheap, split, signals)
    knn = fitted["itemknn"]
    knn_s = time.perf_counter() - t
    sas, sas_row = sasrec_retriever(work, key, seed, minutes, threads, prep, ds, split)
    m = evaluate(knn, split.test, (5, 10, 20), n_items=split.n_items, progress=False)
    for name, metrics, secs in (("item-kNN", m, knn_s), ("SASRec (retriever)", sas_row, sas_row["train_seconds"])):
        rows.append({**base, "method": name, **{k: v for k, v in metrics.items() if k.startswith(("recall", "ndcg"))}, "train_seconds": round(secs, 1)})
    rows[-1].update({"epochs_run": sas_row["epochs_run"], "sasrec_recipe": SASREC_RECIPE, "retriever_reused": sas_row["reused"],
                    "stopped_by_time": sas_row["stopped_by_time"]})

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
    abl = ablation(retrievers, featurizer, split, steps, n_candidates=n_candidates, seed=seed, select_last=select_groups)
    for r in abl:
        rows.append({**base, **r, "retrievers": list(retrievers), "n_candidates": n_candidates, "sasrec_recipe": SASREC_RECIPE})
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


def run_key(row: dict) -> tuple:
    """One (dataset, seed) run: a re-run or a merged file replaces every row of it (all its methods)."""
    return row["dataset"], row.get("seed")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="ml100k,scientific,beauty")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--minutes", type=float, default=15.0, help="SASRec retriever training cap per run")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run (2 = the whole machine)")
    ap.add_argument("--results", default="bench_ranking", help="results file name (parallel runs: one each, merged after)")
    ap.add_argument("--candidates", type=int, default=100, help="top-N per retriever")
    ap.add_argument("--retrievers", default=",".join(CHEAP_RETRIEVERS), help="retrievers fitted on the spot besides SASRec (and textknn where items have text)")
    ap.add_argument("--workdir", default=str(REPO / ".recsage" / "bench-ranking"))
    ap.add_argument("--select-groups", action="store_true", help="add the row whose groups 3-fold CV chooses (25+ min of LightGBM fits per Scientific run)")
    ap.add_argument("--merge", default="", help="results files of parallel runs to merge into --results (no runs then)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    work = Path(a.workdir)
    if a.one:
        key, seed = a.one.split(":")
        Path(a.out).write_text(json.dumps(one(key, int(seed), work, a.minutes, a.candidates, a.threads, a.select_groups,
                                              tuple(r for r in a.retrievers.split(",") if r)), default=str))
        return
    path = REPO / "benchmarks" / "results" / f"{a.results}.json"
    rows = [r for r in (json.loads(path.read_text()) if path.exists() else []) if "seed" in r]
    if a.merge:
        rows = [r for r in merge_results(rows, a.merge, run_key) if "seed" in r]
        write_results(a.results, rows + [{**s, "summary": True} for s in summarise(rows)])
    for key in [] if a.merge else a.datasets.split(","):
        for seed in [int(s) for s in a.seeds.split(",")]:
            print(f"== {key} seed {seed}", flush=True)
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                subprocess.run([sys.executable, __file__, "--one", f"{key}:{seed}", "--out", f.name, "--workdir", str(work), "--minutes", str(a.minutes),
                                "--candidates", str(a.candidates), "--threads", str(a.threads), "--retrievers", a.retrievers]
                               + (["--select-groups"] if a.select_groups else []), check=True)
                new = json.loads(Path(f.name).read_text())
            rows = [r for r in rows if run_key(r) != (key, seed)] + new
            write_results(a.results, rows + [{**s, "summary": True} for s in summarise(rows)])
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
