"""OneReason at small scale: does thinking before the SID help a generative recommender?

Amazon Scientific (text Semantic IDs) and MovieLens-100K (collaborative SIDs), leave-one-out,
full ranking, trie-constrained beam 20, seeds 0–2. Models, all the lazy generative recipe with the
same training-time cap (compute-matched: a thinking model's longer decode makes its epochs slower):
- `plain`: the recommender core's generative SID model;
- `full`: thinking model trained on the three-level chain, decoded `think` (model writes the
  whole thought), `grounded` (history-derived induction/abduction pinned, model writes the
  deduction), `nothink` (thought empty, same weights) and `race` (think ∪ nothink, interleaved);
- `induction`: one-level chain (interest keys only); `shuffled`: the full chain of another random
  sample (ungrounded thoughts).
pass@k is reported as recall@k (one held-out item; each of the k candidates is one attempt).

Run: .venv/bin/python benchmarks/bench_onereason.py [--runs scientific/plain:0,...] [--part train|llm|all]
The `llm` part verbalises chains of real Scientific users with the embedded LLM and reports the
verifier's pass rate and throughput (the texts are kept under results/onereason-verbalised/).
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
    {"dataset": "note", "method": "OneRec-Think / OpenOneRec (papers)", "mode": "thinking ≈ non-thinking (no reliable gain)"},
    {"dataset": "note", "method": "OneReason (paper)", "mode": "thinking > non-thinking once SIDs are grounded and CoT is three-level"},
]
DATA = {"scientific": ("scientific", "amazon-scientific", "text", 256), "ml100k": ("movielens-100k", "movielens-100k", "cf", 64)}
# the lazy recipe (recmodels.defaults.lazy_choices) with the cosine fitted to the time cap
RECIPE = {"dim": 128, "n_decoder_layers": 2, "dropout": 0.1, "lr": 3e-3, "lr_schedule": "cosine", "warmup_steps": 100, "patience": 20,
          "label_smoothing": 0.1, "history_dropout": 0.15, "progress": False}
CAP = {"scientific": 120.0, "ml100k": 150.0}  # training seconds per model
EPOCHS = {("scientific", "plain"): 6, ("scientific", "thinking"): 3, ("ml100k", "plain"): 3, ("ml100k", "thinking"): 2}
MODES = {"plain": ("-",), "full": ("think", "grounded", "nothink", "race"), "induction": ("think", "grounded"), "shuffled": ("think", "nothink"),
         "full-long": ("think", "grounded", "nothink"), "plain-long": ("-",)}
# epoch-matched rather than time-matched: the full chain with the plain model's epochs (and the time that takes)
LONG = {"full-long": ("full", {"scientific": 6, "ml100k": 3}, {"scientific": 300.0, "ml100k": 330.0}),
        # its control: the plain model given the same wall-clock (≈200 s on Scientific: 10 epochs)
        "plain-long": ("plain", {"scientific": 10, "ml100k": 5}, {"scientific": 300.0, "ml100k": 330.0})}


def prepared(work: Path, key: str) -> tuple[Path, Path]:
    from recsage.datasets import Dataset
    from recsage.pipelines import prepare_dataset
    from recsage.pipelines.sid import build_semantic_ids

    kind, folder, source, codes = DATA[key]
    data, sid = work / kind, work / f"sid-{kind}"
    if not (data / "dataset.json").exists():
        prepare_dataset(kind, require_shared() / folder, data)
    if not (sid / "sids.parquet").exists():
        build_semantic_ids(Dataset.load(data), method="balanced", source=source, levels=3, codes=codes, collision="reassign", out=sid)
    return data, sid


def one(key: str, run: str, seed: int, work: Path) -> list[dict]:
    import torch

    from recsage.core.seeding import set_seed
    from recsage.evaluation import evaluate
    from recsage.pipelines.data import load_split
    from recsage.pipelines.onereason import build_thinking_model
    from recsage.recmodels import RECOMMENDERS
    from recsage.recmodels.generative import GenerativeConfig, GenerativeSIDRecommender
    from recsage.tokenizers import SIDTable
    from recsage.tokenizers.item_vectors import collaborative_vectors

    torch.set_num_threads(2)
    data, sid = prepared(work, key)
    ds, split = load_split(data, "loo")
    table = SIDTable.load(sid)
    side = collaborative_vectors(split.train.sequences, split.n_items, dim=64)
    set_seed(seed)
    t = time.perf_counter()
    if run == "itemknn":
        model = RECOMMENDERS.get("itemknn")().fit(split.train, split.valid)
    elif run in ("plain", "plain-long"):
        epochs, cap = (LONG[run][1][key], LONG[run][2][key]) if run in LONG else (EPOCHS[(key, "plain")], CAP[key])
        params = {**RECIPE, "epochs": epochs, "max_train_seconds": cap, "seed": seed}
        model = GenerativeSIDRecommender(table, GenerativeConfig(**params), side_features=side).fit(split.train, split.valid)
    elif run in LONG:
        thought, epochs, cap = LONG[run]
        params = {**RECIPE, "epochs": epochs[key], "max_train_seconds": cap[key]}
        model = build_thinking_model(ds, table, thought=thought, seed=seed, side_features=side, **params).fit(split.train, split.valid)
    else:
        params = {**RECIPE, "epochs": EPOCHS[(key, "thinking")], "max_train_seconds": CAP[key]}
        model = build_thinking_model(ds, table, thought=run, seed=seed, side_features=side, **params).fit(split.train, split.valid)
    train_s = time.perf_counter() - t
    rows = []
    for mode in MODES.get(run, ("-",)):
        scorer = model if mode == "-" else model.with_mode(mode)
        t = time.perf_counter()
        m = evaluate(scorer, split.test, (1, 5, 10), n_items=split.n_items, progress=False, batch_size=512)
        rows.append({"dataset": ds.name, "method": run, "mode": mode, "seed": seed, **{k: round(v, 5) for k, v in m.items() if "@" in k},
                     "pass@1": round(m["recall@1"], 5), "pass@5": round(m["recall@5"], 5), "pass@10": round(m["recall@10"], 5),
                     "train_seconds": round(train_s, 1), "epochs_run": getattr(getattr(model, "train_result_", None), "epochs_run", None),
                     "eval_seconds": round(time.perf_counter() - t, 1), "ms_per_user": round(1000 * (time.perf_counter() - t) / len(split.test), 2),
                     "seconds": round(train_s + time.perf_counter() - t, 1), "peak_mb": round(rss_mb()), "cap_seconds": LONG[run][2][key] if run in LONG else CAP[key] if run != "itemknn" else None})
    return rows


def seed_means(rows: list[dict]) -> list[dict]:
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "ndcg@10" in r:
            groups.setdefault((r["dataset"], r["method"], r["mode"]), []).append(r)
    out = []
    for (dataset, method, mode), rs in groups.items():
        row = {"dataset": dataset, "method": method, "mode": mode, "n_seeds": len(rs)}
        for m in ("recall@10", "ndcg@10", "pass@1", "pass@5"):
            v = np.array([r[m] for r in rs])
            row[m] = f"{v.mean():.4f} ±{v.std():.4f}"
        row["train_s"] = round(float(np.mean([r["train_seconds"] for r in rs])))
        row["ms/user"] = round(float(np.mean([r["ms_per_user"] for r in rs])), 1)
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    default = ",".join(f"{d}/{r}:{s}" for d in DATA for s in range(3) for r in ("itemknn", "plain", "full", "induction", "shuffled") if not (r == "itemknn" and s))
    ap.add_argument("--runs", default=default)
    ap.add_argument("--part", default="all", choices=("train", "llm", "all"))
    ap.add_argument("--n-chains", type=int, default=16, help="chains the LLM verbalises (llm part)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=str(REPO / ".recsage" / "bench-onereason"))
    a = ap.parse_args()
    work = Path(a.workdir)
    if a.one:
        spec, seed = a.one.split(":")
        key, run = spec.split("/")
        Path(a.out).write_text(json.dumps(one(key, run, int(seed), work)))
        return
    path = REPO / "benchmarks" / "results" / "bench_onereason.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    if a.part in ("train", "all"):
        for spec in a.runs.split(","):
            print(f"== {spec}", flush=True)
            with tempfile.NamedTemporaryFile(suffix=".json") as f:
                subprocess.run([sys.executable, __file__, "--one", spec, "--out", f.name, "--workdir", str(work)], check=True)
                new = json.loads(Path(f.name).read_text())
            keys = {(r["dataset"], r["method"], r["mode"], r["seed"]) for r in new}
            rows = [r for r in rows if (r.get("dataset"), r.get("method"), r.get("mode"), r.get("seed")) not in keys] + new
            write_results("bench_onereason", rows)
    if a.part in ("llm", "all"):
        from verbalise_chains import verbalise_rows  # benchmarks/verbalise_chains.py

        data, _ = prepared(work, "scientific")
        llm_rows = verbalise_rows(data, REPO / "benchmarks" / "results" / "onereason-verbalised", a.n_chains, work)
        rows = [r for r in rows if r.get("method") not in {x["method"] for x in llm_rows}] + llm_rows
        write_results("bench_onereason", rows)
    print_table(seed_means(rows), ["dataset", "method", "mode", "n_seeds", "recall@10", "ndcg@10", "pass@1", "pass@5", "train_s", "ms/user"],
                "leave-one-out, full ranking, beam 20: mean ± std over seeds")
    llm = [r for r in rows if "verifier_pass_rate" in r or "sft_records" in r]
    if llm:
        print_table(llm, [k for k in llm[0] if k not in ("examples",)], "verbalisation (embedded LLM) and SFT export")
    print_table(PUBLISHED, ["dataset", "method", "mode"], "published direction")


if __name__ == "__main__":
    main()
