"""TagCF benchmark: recommendation lift (SASRec vs SASRec + TagCF graph features vs the TagCF
model; same split, same seeds), role identification on held-out MovieLens users, and the LLM
extraction numbers of the tagging run.

    # once: LLM tags for every ML-100K item with the default model, kept as a committed artifact
    # (resumable: a rerun tags only what is missing; ids and tags only, no MovieLens text)
    .venv/bin/python -m recsage.cli data prepare movielens-100k --src ../shared/data/movielens-100k --out .recsage/bench/ml100k
    .venv/bin/python -m recsage.cli tagcf extract --data .recsage/bench/ml100k --out benchmarks/results/tagcf-ml100k-llm
    # the lift: SASRec / + TagCF features / TagCF model on the recommender-core recipe, seeds 0-2
    .venv/bin/python benchmarks/bench_tagcf.py --seeds 0,1,2 --minutes 6

    # role identification (seeds 0-2) and graph evidence statistics → results/bench_tagcf_roles.json
    # (every user held out once: 5 user-level folds per seed; --folds 0 for one 20% split per seed)
    .venv/bin/python benchmarks/bench_tagcf.py --part roles --seeds 0,1,2
    # + the LLM route, read once for seed 0's held-out users (resumable, kept as an artifact)
    .venv/bin/python benchmarks/bench_tagcf.py --part roles --seeds 0,1,2 --llm-roles
    # tag quality / position bias (the item's categories or genres held out of the prompt)
    .venv/bin/python benchmarks/bench_tagcf.py --part tags --items 60 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED, complete_llm_tags, measure, print_table, write_results  # noqa: E402

from recsage.datasets.registry import load_dataset  # noqa: E402
from recsage.pipelines.data import make_split  # noqa: E402
from recsage.pipelines.tagcf import build_vocabularies, tag_items, tagcf_model_inputs  # noqa: E402
from recsage.pipelines.train import train_recommender  # noqa: E402
from recsage.tokenizers.item_vectors import collaborative_vectors  # noqa: E402

WORK = REPO / ".recsage" / "bench" / "tagcf"
DATASETS = {"movielens-100k": ("movielens-100k", "movielens-100k"), "scientific": ("scientific", "amazon-scientific")}
ARTIFACT_KEY = {"movielens-100k": "ml100k", "scientific": "scientific"}


def ensure_tags(name: str, kind: str, folder: str, ds) -> Path:
    """The committed LLM tagging run once it covers every item (ML-100K must have it, see the
    docstring); until then Scientific uses data-derived category topics, built here without an LLM."""
    llm = complete_llm_tags(ARTIFACT_KEY[name])
    if llm is not None:
        return llm
    if name == "movielens-100k":
        raise SystemExit(f"run the LLM tagging first: {__doc__}")
    out = WORK / name
    if not (out / "item_tags.parquet").exists():
        build_vocabularies(ds, out, extend=False)
        tag_items(ds, out, out, limit=0, progress=False)
    return out


ROLE_ARTIFACT = REPO / "benchmarks" / "results" / "tagcf-user-roles"


def roles_part(seeds: list[int], llm_roles: bool, folds: int) -> None:
    """Role identification on held-out ML-100K users (user-level split per seed) and the role
    graph's evidence statistics. Topics: the LLM tagging run's when it exists, else genres."""
    from recsage.pipelines.roles import identify_roles_supervised, read_user_roles, summarise_roles
    from recsage.pipelines.tagcf import build_role_graph, split_users, user_role_labels

    ds = load_dataset("movielens-100k", SHARED / "movielens-100k")
    tags_dir = complete_llm_tags("ml100k")
    if tags_dir is None:
        tags_dir = WORK / "ml100k-genres"
        if not (tags_dir / "item_tags.parquet").exists():
            build_vocabularies(ds, tags_dir, extend=False)
            tag_items(ds, tags_dir, tags_dir, limit=0, progress=False)
    llm_dir = None
    if llm_roles:  # the default embedded model reads seed 0's held-out users (resumable; reused when present)
        _, test_u = split_users(user_role_labels(ds)["user_id"].to_numpy(), 0.2, 0)
        meta = read_user_roles(ds, ROLE_ARTIFACT, user_ids=[int(u) for u in test_u], progress=True)
        print({k: meta.get(k) for k in ("model", "prompt", "users", "new_ok", "new_failed", "skipped_done", "seconds")}, flush=True)
        llm_dir = ROLE_ARTIFACT
    elif (ROLE_ARTIFACT / "user_roles_llm.parquet").exists():
        llm_dir = ROLE_ARTIFACT
    row = {"dataset": "movielens-100k", "task": "roles-timing", "method": "all methods, all seeds", "seed": -1}
    with measure(row):
        rows = identify_roles_supervised(ds, tags_dir, seeds=seeds, folds=folds, llm_answers=llm_dir)
    summary = summarise_roles(rows)
    for r in summary:
        r["task"] = "roles-mean"
    print_table(summary, ["group", "method", "seeds", "top1_acc", "top1_acc_std", "top1_gain", "top1_gain_std", "top3_acc", "macro_f1",
                          "macro_f1_std", "macro_f1_gain", "macro_f1_gain_std", "log_loss", "ece", "features"],
                f"role identification, held-out ML-100K users ({f'{folds} user-level folds' if folds >= 2 else 'one 20% user split'} per seed, mean ± std over seeds {seeds}; topics from {tags_dir.name})")
    graph_rows = []
    for w, name in ((0.0, "behaviour only"), (0.5, "LLM + behaviour")):
        g = build_role_graph(ds, tags_dir, llm_weight=w)
        st = g.stats()
        top = g.top_edges(n=5)
        graph_rows.append({"dataset": "movielens-100k", "task": "graph", "method": name, "seed": 0,
                           **{k: st[k] for k in ("role_topic_edges", "role_topic_edges_above_floor", "above_floor_by_behaviour", "above_floor_by_llm")},
                           "support_floor": st["support_floor"],
                           "top_edges": "; ".join(f"{r.source}→{r.target} lift {r.lift:.2f} [{r.lift_low:.2f},{r.lift_high:.2f}] {r.support_users} users"
                                                  for r in top.itertuples())})
    print_table(graph_rows, ["method", "role_topic_edges", "role_topic_edges_above_floor", "above_floor_by_behaviour", "above_floor_by_llm"],
                "role graph evidence (ML-100K)")
    for r in graph_rows:
        print(f"  {r['method']}: {r['top_edges']}")
    write_results("bench_tagcf_roles", [{"task": "roles", **r} for r in rows] + summary + graph_rows + [row])


TAG_DATASETS = {"scientific": ("scientific", "amazon-scientific"), "movielens-100k": ("movielens-100k", "movielens-100k")}


def tags_part(n_items: int, shortlist: int, seed: int) -> None:
    """Tag quality with the item's own categories/genres held out of the prompt: precision and
    recall of the chosen topics against them, and position bias (how often the first three
    vocabulary entries are chosen), for the LLM shown the whole vocabulary in a fixed order, the
    LLM shown a shuffled MiniLM shortlist, and the MiniLM nearest-tag baseline (top 2)."""
    from recsage.knowledge.tagcf.extract import ItemTagger, shortlist_tags, tag_items_batch
    from recsage.llm.embed import Embedder
    from recsage.llm.registry import LLMConfig, get_backend
    from recsage.pipelines.tagcf import popular_items, seed_vocabularies

    backend = get_backend(config=LLMConfig.from_env())
    embed = Embedder().embed
    rows = []
    for name, (kind, folder) in TAG_DATASETS.items():
        ds = load_dataset(kind, SHARED / folder)
        topics, roles = seed_vocabularies(ds)
        rng = np.random.default_rng(seed)
        pool = popular_items(ds).head(max(400, n_items))
        items = pool.iloc[np.sort(rng.choice(len(pool), n_items, replace=False))].drop(columns=["n_interactions"]).reset_index(drop=True)
        truth = {int(r.item_id): {topics.lookup(str(c)) for c in (list(r.categories) if r.categories is not None else [])} - {None}
                 for r in items.itertuples()}
        held_out = items.drop(columns=["categories"])  # the prompt and the shortlist never see the answer
        first3 = set(topics.names[:3])
        short = shortlist_tags(held_out, topics, roles, embed, k_topics=shortlist, seed=seed)
        variants = {"LLM, whole vocabulary in order": held_out, f"LLM, shuffled shortlist of {shortlist}": short}
        preds: dict[str, dict[int, list[str]]] = {}
        for method, recs in variants.items():
            out = WORK / "tag-quality" / f"{name}-{'full' if recs is held_out else f'short{shortlist}'}-s{seed}"
            row = {"dataset": name, "task": "tag-quality", "method": method, "seed": seed, "items": n_items, "vocabulary": len(topics)}
            with measure(row):
                run = tag_items_batch(ItemTagger(backend, topics, roles), recs, out, progress=False)
            ok = run.tags[run.tags["status"] == "ok"]
            preds[method] = {int(r.item_id): list(r.topics) for r in ok.itertuples()}
            row |= {"model": run.meta["model"], "failed": int((run.tags["status"] != "ok").sum()),
                    "roles_example": "; ".join(f"{t[:40]} → {', '.join(r)}" for t, r in
                                               zip(items.set_index("item_id").loc[ok["item_id"].head(3), "title"], ok["roles"].head(3)))}
            rows.append(row)
        x = embed([str(t) for t in held_out["title"]])
        v = embed(topics.names)
        sims = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (v / np.linalg.norm(v, axis=1, keepdims=True)).T
        preds["MiniLM nearest tags (top 2)"] = {int(i): [topics.names[j] for j in np.argsort(-s)[:2]] for i, s in zip(held_out["item_id"], sims)}
        rows.append({"dataset": name, "task": "tag-quality", "method": "MiniLM nearest tags (top 2)", "seed": seed, "items": n_items,
                     "vocabulary": len(topics), "failed": 0})
        for row in rows:
            if row["dataset"] != name or "precision" in row:
                continue
            got = preds[row["method"]]
            pairs = [(set(got.get(i, [])), truth[i]) for i in truth if truth[i]]
            chosen = sum(len(p) for p, _ in pairs)
            row["precision"] = round(sum(len(p & t) for p, t in pairs) / max(chosen, 1), 4)
            row["recall"] = round(sum(len(p & t) for p, t in pairs) / max(sum(len(t) for _, t in pairs), 1), 4)
            row["items_with_truth"] = len(pairs)
            row["first3_share"] = round(sum(len(p & first3) for p, _ in pairs) / max(chosen, 1), 4)  # of chosen tags
            row["first3_expected"] = round(sum(len(t & first3) for _, t in pairs) / max(sum(len(t) for _, t in pairs), 1), 4)
    print_table(rows, ["dataset", "method", "items_with_truth", "vocabulary", "precision", "recall", "first3_share", "first3_expected", "failed", "seconds"],
                f"tag quality, categories/genres held out of the prompt (seed {seed})")
    for r in rows:
        if r.get("roles_example"):
            print(f"  {r['dataset']} / {r['method']}: {r['roles_example']}")
    write_results("bench_tagcf_tags", rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="recommend", choices=["recommend", "roles", "tags"],
                    help="recommend: the lift table (bench_tagcf.json); roles: role identification + graph evidence; tags: tag quality and position bias")
    ap.add_argument("--items", type=int, default=60, help="--part tags: items per dataset")
    ap.add_argument("--shortlist", type=int, default=12, help="--part tags: topics shown per item")
    ap.add_argument("--llm-roles", action="store_true", help="with --part roles: run the LLM route (default model) on seed 0's held-out users")
    ap.add_argument("--folds", type=int, default=5, help="--part roles: every user held out once in this many user-level folds per seed (0: one 20%% split)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--datasets", default="movielens-100k,scientific")
    ap.add_argument("--minutes", type=float, default=6.0, help="training time cap per run")
    ap.add_argument("--methods", default="", help=f"comma-separated, default {','.join(METHODS)}; also {', '.join(ABLATIONS)}")
    ap.add_argument("--tag-loss-weight", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1: two benchmarks can share the machine)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.part == "roles":
        return roles_part(seeds, args.llm_roles, args.folds)
    if args.part == "tags":
        return tags_part(args.items, args.shortlist, seeds[0])
    methods = tuple(args.methods.split(",")) if args.methods else METHODS
    unknown = set(methods) - set(METHODS + ABLATIONS)
    if unknown:
        raise SystemExit(f"unknown --methods {sorted(unknown)}; choose from {list(METHODS + ABLATIONS)}")
    return recommend_part(args.datasets.split(","), seeds, args.minutes, args.tag_loss_weight, methods)


METHODS = ("sasrec", "sasrec+tagcf-features", "tagcf")
# diagnosis: the same features through a side-info projection that starts at zero
# and against the strongest id-based side information: collaborative vectors (co-occurrence SVD of the
# training sequences, the bench_recmodels recipe that passes item-kNN, dropout .4), alone and with the
# TagCF features beside them — do the LLM features add anything on top?
ABLATIONS = ("sasrec+tagcf-features (zero init)", "sasrec+cf-features", "sasrec+cf+tagcf-features")
RECIPE = "core"  # every setting chosen from the data (recmodels.defaults), as `recsage train sasrec --data X`


def read_runs(path: Path) -> list[dict]:
    """The finished runs appended to a runs-*.jsonl file (none yet: empty)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


TAG_FREE = ("sasrec", "sasrec+cf-features")  # methods that read no tags


def recommend_part(datasets: list[str], seeds: list[int], minutes: float, tag_loss_weight: float, methods: tuple[str, ...] = METHODS) -> None:
    """SASRec, SASRec + TagCF item features, and the TagCF model (tag head + logic score), all on
    the recommender-core recipe (no setting given but the time cap), same split and seeds; the lift
    is paired by seed. Finished runs are appended to runs-core.jsonl and reused by reruns."""
    done_path = WORK / "runs-core.jsonl"
    done = read_runs(done_path)
    rows: list[dict] = []
    for name in datasets:
        kind, folder = DATASETS[name]
        ds = load_dataset(kind, SHARED / folder)
        tags_dir = ensure_tags(name, kind, folder, ds)
        split = make_split(ds, "loo")
        inputs = tagcf_model_inputs(ds, split, tags_dir)
        tag_meta = json.loads((tags_dir / "item_tags.json").read_text()) if (tags_dir / "item_tags.json").exists() else {}
        cf = collaborative_vectors(split.train.sequences, split.n_items, dim=64) if any("cf" in m for m in methods) else None
        for method in methods:
            extra = {"sasrec": {}, "sasrec+tagcf-features": {"side_features": inputs["side_features"]},
                     "sasrec+cf-features": {"side_features": cf, "dropout": 0.4},
                     "sasrec+cf+tagcf-features": {"side_features": None if cf is None else np.hstack([cf, inputs["side_features"]]), "dropout": 0.4},
                     "sasrec+tagcf-features (zero init)": {"side_features": inputs["side_features"], "side_init": "zero"},
                     "tagcf": {"item_tags": inputs["item_tags"], "logic": inputs["logic"], "tag_loss_weight": tag_loss_weight}}[method]
            for seed in seeds:
                # a finished run is reused only if it saw the same tags (Scientific switches to LLM tags once they are complete)
                prior = [r for r in done if (r["dataset"], r["method"], r["seed"]) == (name, method, seed)
                         and (method in TAG_FREE or r.get("llm_tagged_items", 0) == tag_meta.get("items_tagged_by_llm", 0))]
                if prior:
                    rows.append(prior[-1])
                    continue
                row = {"dataset": name, "task": "recommend", "method": method, "seed": seed, "protocol": "loo", "recipe": RECIPE,
                       "llm_tagged_items": tag_meta.get("items_tagged_by_llm", 0), "tags": int(inputs["item_tags"].shape[1]),
                       "side_features": int(extra["side_features"].shape[1]) if "features" in method else 0}
                with measure(row):
                    _, res = train_recommender("tagcf" if method == "tagcf" else "sasrec", None, split=split, dataset=ds, seed=seed,
                                               ks=(10, 20), max_train_seconds=minutes * 60, progress=False, **extra)
                row |= {k: res[k] for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "gini@20", "best_epoch", "epochs_run",
                                            "stopped_by_time", "train_seconds")}
                row["chosen"] = {k: v["value"] for k, v in res.get("defaults", {}).get("chosen", {}).items()}
                rows.append(row)
                done_path.parent.mkdir(parents=True, exist_ok=True)
                with open(done_path, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print({k: row[k] for k in ("dataset", "method", "seed", "ndcg@10", "recall@10", "best_epoch", "stopped_by_time", "seconds")}, flush=True)
        if tag_meta.get("model"):  # an LLM tagging run: its extraction numbers
            vocab = json.loads((tags_dir / "vocabulary_report.json").read_text())
            n_ok, n_bad = tag_meta.get("items_tagged_by_llm", 0), tag_meta.get("items_failed", 0)
            rows.append({"dataset": name, "task": "extraction", "method": tag_meta.get("model"), "items_tagged": n_ok, "items_failed": n_bad,
                         "json_validity": round(n_ok / max(1, n_ok + n_bad), 4), "items_per_min": round(60 * tag_meta.get("records_per_second", 0), 2),
                         "topic_candidates": vocab.get("topic", {}).get("candidates"), "topic_new": vocab.get("topic", {}).get("new_tags"),
                         "role_candidates": vocab.get("role", {}).get("candidates"), "role_new": vocab.get("role", {}).get("new_tags"),
                         "role_rejected_as_topics": vocab.get("role", {}).get("rejected_other_kind"), "topics": vocab.get("topics"), "roles": vocab.get("roles")})
    seen = {(r["dataset"], r["method"], r["seed"]) for r in rows if r["task"] == "recommend"}
    # runs of other --methods and --datasets (re-read: a second benchmark may have appended meanwhile), so the
    # results file always holds every finished run
    done = read_runs(done_path)
    latest = {(r["dataset"], r["method"], r["seed"]): r for r in done}
    rows += [r for k, r in latest.items() if k not in seen]
    # and the committed rows of the datasets this run left out (a fresh machine has no runs file): a
    # Scientific-only rerun must not drop the MovieLens rows (rows of a rerun dataset may be stale: new tags)
    seen |= set(latest)
    committed = REPO / "benchmarks" / "results" / "bench_tagcf.json"
    old = json.loads(committed.read_text()) if committed.exists() else []
    rows += [r for r in old if r.get("task") in ("recommend", "extraction") and r["dataset"] not in datasets
             and (r["task"] == "extraction" or (r["dataset"], r["method"], r["seed"]) not in seen)]
    summary = lift_summary([r for r in rows if r["task"] == "recommend"])
    print_table(summary, ["dataset", "method", "seeds", "recall@10", "recall@10_std", "ndcg@10", "ndcg@10_std", "ndcg@10_lift", "ndcg@10_lift_std",
                          "recall@10_lift", "recall@10_lift_std", "coverage@20", "seconds"],
                f"recommendation, leave-one-out full ranking, recommender-core recipe (mean ± std over seeds {seeds}; lift paired by seed against sasrec)")
    print_table([r for r in rows if r["task"] == "extraction"], ["method", "items_tagged", "items_failed", "json_validity", "items_per_min", "topics", "roles"],
                "LLM extraction")
    write_results("bench_tagcf", rows + [{"task": "recommend-mean", **s} for s in summary])


def lift_summary(rec: list[dict], baseline: str = "sasrec") -> list[dict]:
    """Mean ± std over seeds per (dataset, method), and each method's gain over `baseline` on the
    same seed (`*_lift`: relative, mean ± std of the per-seed ratios − 1)."""
    out = []
    for d, m in dict.fromkeys((r["dataset"], r["method"]) for r in rec):
        rs = sorted((r for r in rec if r["dataset"] == d and r["method"] == m), key=lambda r: r["seed"])
        row = {"dataset": d, "method": m, "seeds": len(rs), "seconds": round(float(np.mean([r["seconds"] for r in rs])), 1)}
        for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@20", "gini@20"):
            v = np.array([r[k] for r in rs])
            row[k], row[f"{k}_std"] = round(float(v.mean()), 4), round(float(v.std()), 4)
        base = {r["seed"]: r for r in rec if r["dataset"] == d and r["method"] == baseline}
        paired = [(r, base[r["seed"]]) for r in rs if r["seed"] in base]
        if m != baseline and paired:
            for k in ("recall@10", "ndcg@10"):
                lift = np.array([a[k] / b[k] - 1 for a, b in paired])
                row[f"{k}_lift"], row[f"{k}_lift_std"] = round(float(lift.mean()), 4), round(float(lift.std()), 4)
        out.append(row)
    return out


if __name__ == "__main__":
    main()
