"""`recsage demo`: the end-to-end job on the bundled sample, as a readable report.

Each capability adds its step here as it lands, so the demo always shows what recsage can do.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset
from recsage.llm import get_backend
from recsage.llm.registry import LLMConfig
from recsage.pipelines.data import load_split, prepare_dataset
from recsage.pipelines.recommend import evaluate_recommender
from recsage.pipelines.sid import build_semantic_ids


def bundled_data_dir() -> Path:
    """`data/` of the source checkout (the package is installed editable by the Makefile)."""
    here = Path(__file__).resolve().parents[2] / "data"
    if not (here / "scientific-sample").exists():
        raise InvalidInputError("bundled samples not found; pass --data pointing at recsage's data/ folder", file=str(here))
    return here


def shared_reddit_dir() -> Path | None:
    """The Reddit threads beside the clone (never bundled: the data states no licence)."""
    import os

    root = Path(os.environ.get("RECSAGE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    folder = root / "reddit-college-comments"
    return folder if (folder / "comments.csv.gz").exists() else None


def run_demo(data_dir: str | Path | None = None, out_dir: str | Path = ".recsage/demo", *, llm: LLMConfig | None = None, n_llm_items: int = 6,
             train_seconds: float = 30) -> dict[str, Any]:
    """`train_seconds` caps each of the three models' training (the tests use less: the report's
    shape, not the models' quality, is what they check)."""
    data_dir = Path(data_dir) if data_dir else bundled_data_dir()
    out_dir = Path(out_dir)
    report: dict[str, Any] = {"steps": []}

    t = time.perf_counter()
    sci = prepare_dataset("scientific", data_dir / "scientific-sample", out_dir / "scientific")
    up = prepare_dataset("upworthy", data_dir / "upworthy-sample", out_dir / "upworthy")
    report["datasets"] = {"scientific-sample": sci, "upworthy-sample": up}
    report["steps"].append(("prepare + validate datasets", time.perf_counter() - t))

    t = time.perf_counter()
    ds, split = load_split(out_dir / "scientific", "loo")
    report["baselines"] = [evaluate_recommender(m, split, ks=(5, 10), progress=False) for m in ("popularity", "itemknn", "userknn", "ease")]
    report["steps"].append(("leave-one-out baselines", time.perf_counter() - t))

    if n_llm_items > 0:
        cfg = llm or LLMConfig.from_env()
        t = time.perf_counter()
        report["tagcf"] = demo_role_graph(ds, out_dir / "tagcf", n_llm_items, cfg)
        report["steps"].append((f"TagCF: LLM vocabularies + tags for {n_llm_items} items + role graph ({report['tagcf']['model']})", time.perf_counter() - t))
        t = time.perf_counter()
        report["scale"] = demo_scale_out(ds, out_dir / "tagcf", out_dir / "tagcf-ray", min(n_llm_items, 2), cfg)
        report["steps"].append(("Scale-out: the same tagging job on a local Ray cluster (one actor), compared with the local run", time.perf_counter() - t))
        t = time.perf_counter()
        report["push"] = demo_push_copy(ds, Dataset.load(out_dir / "upworthy"), out_dir / "push", cfg)
        report["steps"].append(("PushGen: reward model on the Upworthy sample + copy for one item", time.perf_counter() - t))

        reddit = shared_reddit_dir()
        t = time.perf_counter()
        if reddit is not None:
            from recsage.pipelines.lcu import demo_lcu

            report["lcu"] = demo_lcu(reddit, out_dir / "lcu", Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "lcu-teacher", llm=cfg)
            report["steps"].append(("LCU: live LLM comment labels, student from the committed teacher labels, engagement model", time.perf_counter() - t))
        else:
            report["lcu"] = {"skipped": "Reddit threads not found beside the clone (../shared/data/reddit-college-comments or "
                                        "RECSAGE_SHARED_DATA); they are never bundled (no licence)"}

    t = time.perf_counter()
    table, sid_report = build_semantic_ids(ds, method="rqkmeans", source="text", levels=3, codes=64, collision="suffix", out=out_dir / "sid")
    report["sid"] = sid_report
    report["sid_examples"] = [(str(ds.items.loc[i, "title"])[:60], table.text(i)) for i in range(3)]
    report["steps"].append(("text embeddings + RQ-KMeans semantic IDs", time.perf_counter() - t))

    t = time.perf_counter()
    report["models"] = demo_recommenders(ds, split, table, seconds=train_seconds, out=out_dir / "models")
    report["steps"].append(("train SASRec + lazy generative SID model, recommend for one user", time.perf_counter() - t))

    if n_llm_items > 0:
        from recsage.pipelines.onereason import demo_onereason

        t = time.perf_counter()
        report["onereason"] = demo_onereason(out_dir / "scientific", out_dir / "sid", out_dir / "onereason", llm=llm or LLMConfig.from_env())
        report["steps"].append(("OneReason: chains derived, one verbalised by the LLM and verified, SFT records, a thinking model explained",
                                time.perf_counter() - t))

    t = time.perf_counter()
    report["ranking"] = demo_features_and_ranking(out_dir, ds, split)
    report["steps"].append(("feature tables + ranking stage (item-kNN, user-kNN, EASE + SASRec candidates, LambdaRank), one user explained",
                            time.perf_counter() - t))
    report["out_dir"] = str(out_dir)
    return report


def demo_recommenders(ds: Dataset, split, table, *, seconds: float = 30, out: Path | None = None) -> dict[str, Any]:
    """Small SASRec, lazy generative and DiffGRM models (each capped at `seconds` of training) on
    the sample, scored on the test users, and each model's top-5 for the first test user; saved
    under `out` (the workbench's Recommender page lists them)."""
    from recsage.evaluation import evaluate
    from recsage.recmodels import SASRec, SASRecConfig
    from recsage.recmodels.diffgrm import DiffGRMConfig, DiffGRMRecommender
    from recsage.recmodels.generative import GenerativeConfig, GenerativeSIDRecommender
    from recsage.tokenizers.item_vectors import collaborative_vectors

    models = {
        "sasrec": SASRec(SASRecConfig(dim=32, batch_size=64, lr=2e-3, dropout=0.2, epochs=40, patience=4, max_train_seconds=seconds, progress=False)),
        # collaborative vectors of the training sequences through the side-info hook, as in the benchmark
        "lazy (semantic IDs)": GenerativeSIDRecommender(table, GenerativeConfig(dim=64, n_decoder_layers=2, dropout=0.1, lr=3e-3, epochs=40, patience=4,
                                                                                 valid_users=500, max_train_seconds=seconds, progress=False),
                                                        side_features=collaborative_vectors(split.train.sequences, split.n_items, dim=32)),
        # the same codebook decoded by masked diffusion over the SID digits (any order, most confident first)
        "diffgrm (semantic IDs)": DiffGRMRecommender(table, DiffGRMConfig(dim=64, n_decoder_layers=2, dropout=0.1, lr=3e-3, epochs=40, patience=4,
                                                                          valid_users=500, max_train_seconds=seconds, progress=False),
                                                     side_features=collaborative_vectors(split.train.sequences, split.n_items, dim=32)),
    }
    folders = {"sasrec": "sasrec", "lazy (semantic IDs)": "lazy", "diffgrm (semantic IDs)": "diffgrm"}
    titles = ds.items.set_index("item_id")["title"].astype(str).str.slice(0, 60)
    hist = split.test.histories[0]
    rows, recs = [], {}
    for name, model in models.items():
        model.fit(split.train, split.valid, exclude_seen=split.exclude_seen)
        if out is not None:
            model.save_pretrained(out / folders[name])
        metrics = evaluate(model, split.test, (10,), n_items=split.n_items, exclude_seen=split.exclude_seen, progress=False)
        rows.append({"model": name, "recall@10": metrics["recall@10"], "ndcg@10": metrics["ndcg@10"], "epochs": model.train_result_.epochs_run})
        ids = model.recommend([hist], k=5)[0][0]
        recs[name] = [titles.loc[int(i)] for i in ids if i >= 0]
    user = {"user_id": int(split.test.user_ids[0]), "history": [titles.loc[int(i)] for i in hist[-3:]],
            "held_out": titles.loc[int(split.test.targets[0])]}
    return {"metrics": rows, "user": user, "recommendations": recs}


def demo_features_and_ranking(out_dir: Path, ds: Dataset, split) -> dict[str, Any]:
    """Feature tables from every signal the demo produced (SIDs, text, TagCF tags, the reward
    model), then the ranker over item-kNN, user-kNN, EASE + the demo's SASRec, and "why" for one test user."""
    from recsage.pipelines.features import build_features
    from recsage.pipelines.ranking import explain_for_user, train_ranking

    tags = out_dir / "tagcf" if (out_dir / "tagcf" / "item_tags.parquet").exists() else None
    reward = out_dir / "push" / "reward" if (out_dir / "push" / "reward" / "config.json").exists() else None
    manifest = build_features(out_dir / "scientific", out_dir / "features", sid=out_dir / "sid", tags=tags, reward=reward)
    retrievers = ["itemknn", "userknn", "ease"] + ([f"sasrec:{out_dir / 'models' / 'sasrec'}"] if (out_dir / "models" / "sasrec" / "config.json").exists() else [])
    _, row = train_ranking(out_dir / "scientific", retrievers, features=out_dir / "features", out=out_dir / "ranker", dataset=ds, split=split,
                           n_candidates=50)
    user = int(split.test.user_ids[0])
    why = explain_for_user(out_dir / "ranker" / "model", out_dir / "scientific", user, k=3)
    return {"groups": list(manifest["groups"]), "absent": manifest["absent"], "rows": manifest["rows"],
            "metrics": {k: row[k] for k in ("recall@10", "ndcg@10", "candidate_recall@50")}, "retrievers": row["retrievers"],
            "group_importance": row["group_importance"], "user": user,
            "explained": [{"title": r["title"][:60], "why": r["why"]} for r in why["recommendations"]]}


def demo_role_graph(ds: Dataset, out: Path, n_items: int, config: LLMConfig) -> dict[str, Any]:
    """Vocabularies (categories + LLM-proposed roles), LLM tags for the most popular items, the graph."""
    from recsage.pipelines.tagcf import build_role_graph, build_vocabularies, tag_items

    vocab = build_vocabularies(ds, out, llm=config, sample_items=16, min_count=2) if not (out / "topics.json").exists() else json.loads((out / "vocabulary_report.json").read_text())
    meta = tag_items(ds, out, out, llm=config, limit=n_items, progress=False)
    if not vocab.get("roles"):
        return {"model": meta.get("model"), "vocabulary": {k: vocab.get(k) for k in ("topics", "roles")}, "tagged": meta.get("items_tagged_by_llm"),
                "failed": meta.get("items_failed"), "examples": [], "edges": [], "graph": {"error": "the LLM proposed no usable roles for this sample"}}
    tags = pd.read_parquet(out / "item_tags.parquet")
    tagged = tags[tags["llm"]].merge(ds.items[["item_id", "title"]], on="item_id")
    examples = [{"title": str(r.title)[:60], "topics": list(r.topics), "roles": list(r.roles)} for r in tagged.head(3).itertuples()]
    try:
        graph = build_role_graph(ds, out, out / "graph")
        graph.require_edges()
        edges = graph.top_edges(n=8).to_dict("records")  # evidence first: above the support floor, by conservative lift
        stats = {k: v for k, v in graph.stats().items() if k in ("roles", "topics", "role_topic_edges", "role_topic_edges_above_floor", "edges_with_llm_evidence")}
    except InvalidInputError as e:  # e.g. the LLM gave no roles for these items: say so, keep going
        edges, stats = [], {"error": str(e)}
    return {"model": meta.get("model"), "vocabulary": {k: vocab.get(k) for k in ("topics", "roles")}, "tagged": meta.get("items_tagged_by_llm"),
            "failed": meta.get("items_failed"), "examples": examples, "edges": edges, "graph": stats}


def demo_scale_out(ds: Dataset, local_dir: Path, out: Path, n_items: int, config: LLMConfig) -> dict[str, Any]:
    """Re-runs the first `n_items` of the tagging job on Ray Data (a local cluster, one actor that
    loads its own model) and compares the tags with the local engine's. The actor reads the same
    response cache, so identical prompts cost no second generation; `bench_scale.py` measures with
    the cache off."""
    from recsage.knowledge.tagcf.extract import ItemTagger, tag_items_batch
    from recsage.knowledge.tagcf.vocab import TagVocabulary
    from recsage.llm.batch import BatchJob, EngineConfig
    from recsage.llm.registry import backend_for
    from recsage.pipelines.tagcf import tagging_records

    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return {"skipped": "Ray is not installed (pip install 'recsage[scale]')"}
    engine = EngineConfig(engine="ray", actors=1, cpus_per_actor=1, block_size=1)
    topics, roles = TagVocabulary.load(local_dir / "topics.json"), TagVocabulary.load(local_dir / "roles.json")
    items = tagging_records(ds, topics, roles, limit=n_items)  # the local run's records, shortlists included
    run = tag_items_batch(ItemTagger(backend_for(engine, config), topics, roles), items, out, progress=False, engine=engine)
    local = {r["id"]: r["result"] for r in BatchJob(local_dir / "llm_tags", lambda r: r).results()}
    same = sum(local.get(r["id"]) == r["result"] for r in BatchJob(out, lambda r: r).results())
    return {"engine": "ray (local cluster, 1 actor)", "items": len(items), "ok": run.summary.new_ok + run.summary.skipped_done,
            "same_as_local": f"{same}/{len(run.tags)}", "seconds": run.meta["seconds"]}


def demo_push_copy(items: Dataset, upworthy: Dataset, out: Path, config: LLMConfig) -> dict[str, Any]:
    """A reward model from the bundled Upworthy tests ranks LLM copy for the most popular item."""
    from recsage.generation.pushgen.filters import PushConstraints
    from recsage.generation.pushgen.generator import PushCopyGenerator
    from recsage.generation.pushgen.pairs import balanced_orientation, build_pairs, split_pairs
    from recsage.generation.pushgen.reward import EmbeddingReward, EmbeddingRewardConfig
    from recsage.generation.pushgen.styles import load_style_library
    from recsage.llm.embed import Embedder
    from recsage.pipelines.tagcf import popular_items

    embed = Embedder().embed
    pairs, stats = build_pairs(upworthy.experiments)
    parts = split_pairs(pairs)
    reward = EmbeddingReward(EmbeddingRewardConfig(epochs=15), embed=embed).fit(parts["train"], parts["valid"])
    held_out = reward.evaluate(balanced_orientation(parts["test"]))
    reward.save_pretrained(out / "reward")
    top = popular_items(items).iloc[0]
    text = str(top["title"]) + ("\n" + str(top["description"])[:300] if str(top.get("description", "")).strip() else "")
    backend = get_backend(config=config)
    gen = PushCopyGenerator(backend, load_style_library(), reward.score, embed, n=3, reward_name="demo embedding-bt")
    results = gen.generate(str(top["item_id"]), text, ["benefit_led", "question"], PushConstraints(max_chars=90))
    return {"pairs": stats.to_dict(), "held_out": held_out, "item": str(top["title"])[:70],
            "copies": [{"style": r.style, "chosen": r.chosen, "passed": sum(c["passed"] for c in r.candidates), "candidates": len(r.candidates)} for r in results]}
