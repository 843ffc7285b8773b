"""TagCF benchmark: recommendation lift (SASRec vs SASRec + TagCF graph features vs the TagCF
model; same split, same seeds), role identification on held-out MovieLens users, and the LLM
extraction numbers of the tagging run.

    # once: LLM tags (resumable; the 150 most popular ML-100K items with the default model)
    .venv/bin/python -m recsage.cli data prepare movielens-100k ../shared/data/movielens-100k --out .recsage/bench/prepared/ml100k
    .venv/bin/python -m recsage.cli tagcf extract --data .recsage/bench/prepared/ml100k --out .recsage/bench/tagcf/ml100k --limit 150
    .venv/bin/python benchmarks/bench_tagcf.py --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED, measure, print_table, write_results  # noqa: E402

from recsage.datasets.registry import load_dataset  # noqa: E402
from recsage.pipelines.data import make_split  # noqa: E402
from recsage.pipelines.tagcf import build_vocabularies, identify_roles, tag_items, tagcf_model_inputs  # noqa: E402
from recsage.pipelines.train import train_recommender  # noqa: E402

WORK = REPO / ".recsage" / "bench" / "tagcf"
DATASETS = {"movielens-100k": ("movielens-100k", "movielens-100k", 50), "scientific": ("scientific", "amazon-scientific", 20)}
# Scientific sequences are short (~6 items): batch 256 gives 33 steps an epoch and early stopping
# fired on a plateau at epoch 1-2 (R@10 .025); smaller batches and a higher lr keep it learning.
TRAIN = {"movielens-100k": {}, "scientific": {"batch_size": 64, "lr": 2e-3, "dropout": 0.2, "patience": 10}}


def ensure_tags(name: str, kind: str, folder: str, ds) -> Path:
    """ML-100K: the LLM tagging run (must exist, see the docstring). Scientific: data-derived
    category topics only (no LLM roles in this run), built here without an LLM."""
    out = WORK / ("ml100k" if name == "movielens-100k" else name)
    if name == "movielens-100k":
        if not (out / "item_tags.parquet").exists():
            raise SystemExit(f"run the LLM tagging first: {__doc__}")
        return out
    if not (out / "item_tags.parquet").exists():
        build_vocabularies(ds, out, extend=False)
        tag_items(ds, out, out, limit=0, progress=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--datasets", default="movielens-100k,scientific")
    ap.add_argument("--minutes", type=float, default=4.0, help="training time cap per run")
    ap.add_argument("--tag-loss-weight", type=float, default=0.5)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    # every finished training run is appended here and reused by later invocations (runs take minutes)
    done_path = WORK / "runs.jsonl"
    done = [json.loads(line) for line in done_path.read_text().splitlines()] if done_path.exists() else []
    rows: list[dict] = []
    for name in args.datasets.split(","):
        kind, folder, max_len = DATASETS[name]
        ds = load_dataset(kind, SHARED / folder)
        tags_dir = ensure_tags(name, kind, folder, ds)
        split = make_split(ds, "loo")
        inputs = tagcf_model_inputs(ds, split, tags_dir)
        tag_meta = json.loads((tags_dir / "item_tags.json").read_text()) if (tags_dir / "item_tags.json").exists() else {}
        common = dict(max_len=max_len, dim=64, epochs=200, patience=5, max_train_seconds=args.minutes * 60, progress=False) | TRAIN[name]
        for method, extra in (("sasrec", {}), ("sasrec+tagcf-features", {"side_features": inputs["side_features"]}),
                              ("tagcf", {"item_tags": inputs["item_tags"], "logic": inputs["logic"], "tag_loss_weight": args.tag_loss_weight})):
            for seed in seeds:
                prior = [r for r in done if (r["dataset"], r["method"], r["seed"]) == (name, method, seed)]
                if prior:
                    rows.append(prior[-1])
                    continue
                row = {"dataset": name, "task": "recommend", "method": method, "seed": seed, "protocol": "loo",
                       "llm_tagged_items": tag_meta.get("items_tagged_by_llm", 0), "tags": int(inputs["item_tags"].shape[1])}
                with measure(row):
                    _, res = train_recommender("tagcf" if method == "tagcf" else "sasrec", None, split=split, dataset=ds, seed=seed,
                                               ks=(10, 20), **common, **extra)
                row |= {k: res[k] for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "gini@20", "best_epoch", "epochs_run", "train_seconds")}
                rows.append(row)
                with open(done_path, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(row, flush=True)
        if name == "movielens-100k":
            # the model path: TagCF's tag head scores every role tag for each user's full history (no profile);
            # divided by the mean over users so frequent LLM roles do not win everywhere
            model, _ = train_recommender("tagcf", None, split=split, dataset=ds, seed=0, ks=(10,), **common, item_tags=inputs["item_tags"],
                                         logic=inputs["logic"], tag_loss_weight=args.tag_loss_weight)
            n_topics = inputs["item_tags"].shape[1] - len(json.loads((tags_dir / "roles.json").read_text())["tags"])
            scores = model.user_tag_scores(ds.sequences())[:, n_topics:]
            scores = scores / scores.mean(axis=0, keepdims=True).clip(1e-9)
            role_names = [t["name"] for t in json.loads((tags_dir / "roles.json").read_text())["tags"]]
            for r in identify_roles(ds, tags_dir, model_scores=scores, model_roles=role_names):
                rows.append({"task": "roles", **r})
            vocab = json.loads((tags_dir / "vocabulary_report.json").read_text())
            rows.append({"dataset": name, "task": "extraction", "method": tag_meta.get("model"), "items_tagged": tag_meta.get("items_tagged_by_llm"),
                         "items_failed": tag_meta.get("items_failed"), "json_validity": round(tag_meta.get("items_tagged_by_llm", 0) / max(1, tag_meta.get("items_tagged_by_llm", 0) + tag_meta.get("items_failed", 0)), 4),
                         "items_per_min": round(60 * tag_meta.get("records_per_second", 0), 2),
                         "topic_candidates": vocab.get("topic", {}).get("candidates"), "topic_new": vocab.get("topic", {}).get("new_tags"),
                         "role_candidates": vocab.get("role", {}).get("candidates"), "role_new": vocab.get("role", {}).get("new_tags"),
                         "role_rejected_as_topics": vocab.get("role", {}).get("rejected_other_kind"), "topics": vocab.get("topics"), "roles": vocab.get("roles")})
    seen = {(r["dataset"], r["method"], r["seed"]) for r in rows if r["task"] == "recommend"}
    rows += [r for r in done if (r["dataset"], r["method"], r["seed"]) not in seen]  # runs from earlier invocations
    rec = [r for r in rows if r["task"] == "recommend"]
    summary = []
    for (d, m) in dict.fromkeys((r["dataset"], r["method"]) for r in rec):
        rs = [r for r in rec if r["dataset"] == d and r["method"] == m]
        summary.append({"dataset": d, "method": m, "seeds": len(rs), **{k: round(sum(r[k] for r in rs) / len(rs), 4) for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "gini@20", "seconds")}})
    print_table(summary, ["dataset", "method", "seeds", "recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "gini@20", "seconds"],
                "recommendation, leave-one-out full ranking (mean over seeds)")
    print_table([r for r in rows if r["task"] == "roles"], ["group", "method", "classes", "top1_acc", "top3_acc", "macro_f1", "users"], "role identification, held-out ML-100K users")
    print_table([r for r in rows if r["task"] == "extraction"], ["method", "items_tagged", "items_failed", "json_validity", "items_per_min", "topics", "roles", "role_rejected_as_topics"], "LLM extraction")
    write_results("bench_tagcf", rows + [{"task": "recommend-mean", **s} for s in summary])


if __name__ == "__main__":
    main()
