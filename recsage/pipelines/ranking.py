"""The ranking stage on a prepared dataset: retrievers → candidates → features → LambdaRank."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset, Split
from recsage.evaluation.metrics import ndcg_at_k, recall_at_k
from recsage.features.pairs import GROUPS, PairFeaturizer, feature_group
from recsage.features.signals import ItemSignals
from recsage.features.two_stage import RankingData, TwoStageConfig, TwoStageRecommender, build_ranking_data, ranked_lists
from recsage.pipelines.data import load_split
from recsage.pipelines.features import item_signals
from recsage.recmodels import RECOMMENDERS
from recsage.recmodels.itemknn import ItemKNNRecommender
from recsage.recmodels.ranker import LambdaRankerConfig
from recsage.recmodels.saved import load_recommender

# cheap retrievers fitted on the training split by the ranking stage itself: co-occurrence kNN,
# popularity, nearest neighbours by MiniLM text embedding (needs --features with text) and by
# collaborative vectors (co-occurrence SVD of the training sequences), and by the predicted
# next item's text embedding (`textnext`: a ridge map fitted on the training transitions), and two
# more collaborative views: user-kNN (whole-history neighbours) and EASE (a closed-form item-item model)
FITTED_HERE = ("itemknn", "popularity", "textknn", "textnext", "cfknn", "userknn", "ease")


def parse_retrievers(spec: str | Sequence[str]) -> list[tuple[str, str | None]]:
    """`itemknn,sasrec:DIR,lazy:DIR` → [(name, folder or None)]; names must be unique."""
    parts = [p.strip() for p in (spec.split(",") if isinstance(spec, str) else spec) if p.strip()]
    if not parts:
        raise InvalidInputError("no retrievers given (e.g. --retrievers itemknn,sasrec:work/sasrec/model)", field="retrievers")
    out: list[tuple[str, str | None]] = []
    for p in parts:
        name, _, path = p.partition(":")
        if not path and name not in FITTED_HERE:
            raise InvalidInputError(f"retriever {name!r} needs a saved model folder ({name}:DIR); fitted here: {', '.join(FITTED_HERE)}", field="retrievers")
        if name in [n for n, _ in out]:
            raise InvalidInputError(f"retriever {name!r} given twice", field="retrievers")
        out.append((name, path or None))
    return out


def fit_retrievers(specs: list[tuple[str, str | None]], split: Split, signals: ItemSignals | None = None) -> dict[str, Any]:
    """Cheap retrievers fitted on the training split; saved ones loaded and checked against it."""
    from recsage.recmodels.embedding_knn import EmbeddingKNNConfig, EmbeddingKNNRecommender
    from recsage.tokenizers.item_vectors import collaborative_vectors

    out = {}
    for name, path in specs:
        if path is None and name in ("textknn", "textnext"):
            if signals is None or signals.text_embedding is None:
                raise InvalidInputError(f"{name} needs item text embeddings: pass --features built from a dataset with item text", field="retrievers")
            out[name] = EmbeddingKNNRecommender(signals.text_embedding, EmbeddingKNNConfig(predict_next=name == "textnext")).fit(split.train)
            continue
        if path is None and name == "cfknn":
            out[name] = EmbeddingKNNRecommender(collaborative_vectors(split.train.sequences, split.n_items, dim=64)).fit(split.train)
            continue
        if path is None:
            out[name] = RECOMMENDERS.get(name)().fit(split.train)
            continue
        model_dir = Path(path)
        if (model_dir / "model" / "config.json").exists():  # a `recsage train --out` folder
            model_dir = model_dir / "model"
        model = load_recommender(model_dir)
        if getattr(model, "n_items_", split.n_items) != split.n_items:
            raise InvalidInputError(f"retriever was trained on {model.n_items_} items, this dataset has {split.n_items}", file=str(model_dir), field="n_items")
        out[name] = model
    return out


def ranking_metrics(data: RankingData, scores: np.ndarray, targets: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    ranked, _ = ranked_lists(data, scores, max(ks))
    out = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranked, targets, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranked, targets, k)
    return out


def train_ranking(prepared: str | Path, retrievers: str | Sequence[str], *, features: str | Path | None = None, out: str | Path | None = None,
                  protocol: str = "loo", n_candidates: int = 100, groups: Sequence[str] = GROUPS, seed: int = 0, ks: tuple[int, ...] = (5, 10, 20),
                  dataset: Dataset | None = None, split: Split | None = None, fitted: dict[str, Any] | None = None,
                  ranker: dict[str, Any] | None = None, select_groups: bool = False) -> tuple[TwoStageRecommender, dict[str, Any]]:
    """`recsage rank train`: fits the ranker on validation queries and scores test queries."""
    if split is None or dataset is None:
        dataset, split = load_split(prepared, protocol)
    if split.protocol != "loo":
        raise InvalidInputError("the ranking stage follows the `loo` two-stage protocol (ranker on validation queries)", field="protocol")
    t0 = time.perf_counter()
    signals = item_signals(features, dataset, split)
    models = fitted if fitted is not None else fit_retrievers(parse_retrievers(retrievers), split, signals)
    cfg = TwoStageConfig(n_candidates=n_candidates, groups=tuple(groups), select_groups=select_groups, seed=seed)
    model = TwoStageRecommender(models, signals, cfg, LambdaRankerConfig(seed=seed, **(ranker or {})))
    knn = models.get("itemknn")  # the co-occurrence features reuse a fitted item-kNN retriever instead of refitting one
    featurizer = PairFeaturizer(signals, cfg.groups).fit_from(knn) if isinstance(knn, ItemKNNRecommender) else None
    model.fit(split.train, split.valid, exclude_seen=split.exclude_seen, featurizer=featurizer)
    train_s = time.perf_counter() - t0
    t = time.perf_counter()
    test = model.ranking_data(split.test.histories, split.exclude_seen)
    metrics = ranking_metrics(test, model.score_data(test), split.test.targets, ks)
    row = {"dataset": dataset.name, "method": "two-stage", "protocol": split.protocol, "exclude_seen": split.exclude_seen, "seeds": [seed],
           "n_users": len(split.test), "retrievers": list(models), "n_candidates": n_candidates, "groups": list(groups),
           "features": model.ranker_.feature_names_, **metrics, f"candidate_recall@{n_candidates}": test.candidates.recall(split.test.targets),
           "valid_candidate_recall": model.valid_candidate_recall_, "best_iteration": model.ranker_.best_iteration_,
           "group_importance": model.group_importance(), "group_selection": getattr(model, "group_selection_", None),
           "groups_kept": list(dict.fromkeys(feature_group(n) for n in model.ranker_.feature_names_)), "train_seconds": round(train_s, 1), "eval_seconds": round(time.perf_counter() - t, 1)}
    if out:
        out = Path(out)
        model.save_pretrained(out / "model")
        (out / "metrics.json").write_text(json.dumps(row, indent=2, default=str))
    return model, row


def explain_for_user(model_dir: str | Path, prepared: str | Path, user_id: int, k: int = 10) -> dict[str, Any]:
    """The ranker's top-k for one user of the prepared dataset with per-feature contributions."""
    model = TwoStageRecommender.from_pretrained(model_dir)
    ds = Dataset.load(prepared)
    if not 0 <= user_id < ds.n_users:
        raise InvalidInputError(f"unknown user {user_id} (0..{ds.n_users - 1})", field="user")
    titles = ds.items.set_index("item_id")["title"].astype(str)
    hist = ds.sequences()[user_id]
    recs = model.explain(hist, k)
    for r in recs:
        r["title"] = titles.loc[r["item_id"]]
        r["why"] = reasons(r["contributions"])
    return {"user": user_id, "history": [titles.loc[i] for i in hist[-10:]], "recommendations": recs}


FEATURE_WORDS = {
    "co.last": "co-consumption with your last item", "co.prev": "co-consumption with your second-last item", "co.hist": "co-consumption with your history",
    "tr.last": "how often it follows your last item", "tr.prev": "how often it follows your second-last item", "tr.hist": "how often it follows your history",
    "tr.to_last": "how often it precedes your last item", "co.prev2": "co-consumption with your third-last item",
    "tr.prev2": "how often it follows your third-last item", "co.max5": "its strongest co-consumption with one of your last 5 items",
    "co.argmax5": "how far back that item is", "tr.hop2": "how often it follows your last item two steps later", "item.pop": "its popularity", "item.pop_recent": "its recent popularity",
    "user.hist_len": "your history length", "user.n_unique": "your distinct items", "ret.n_proposing": "how many retrievers proposed it",
    "sid.prefix_last": "semantic-ID prefix shared with your last item", "sid.prefix_max": "semantic-ID prefix shared with your history",
    "sid.l1_share": "share of your history in its top semantic-ID branch", "sid.l2_share": "share of your history in its semantic-ID sub-branch",
    "text.cos_last": "text similarity to your last item", "text.cos_mean": "text similarity to your history", "text.cos_max": "closest text match in your history",
    "text.next_last": "text match with what usually follows your last item", "text.next_hist": "text match with what usually follows your history",
    "tag.topic_cos": "topic overlap with your history", "tag.n_topics": "its number of topics", "tag.logic": "your roles' topics (TagCF logic graph)",
    "tag.cos_last": "topic overlap with your last item", "tag.tr_last": "how often its topics follow your last item's topics",
    "tag.tr_hist": "how often its topics follow your history's topics",
    "reward.title": "its title's push-copy reward score",
}


def reasons(contributions: dict[str, float], n: int = 3) -> str:
    """The `n` features that moved a score most, in words."""
    top = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:n]
    return "; ".join(f"{describe_feature(f)} {'raised' if v > 0 else 'lowered'} the score by {abs(v):.2f}" for f, v in top)


def describe_feature(name: str) -> str:
    if name in FEATURE_WORDS:
        return FEATURE_WORDS[name]
    if name.startswith("ret.") and name.count(".") >= 2:
        r, kind = name[4:].rsplit(".", 1)
        return f"{r}'s {kind}"
    return name


def ablation(retrievers: dict[str, Any], featurizer: PairFeaturizer, split: Split, steps: list[tuple[str, list[str]]], *, n_candidates: int = 100,
             seed: int = 0, ks: tuple[int, ...] = (5, 10, 20), ranker: dict[str, Any] | None = None,
             early_stop_share: float = 0.1, select_last: bool = False, selection_folds: int = 3) -> list[dict[str, Any]]:
    """One candidate set and one feature matrix per query set; a ranker per feature-group step
    (behaviour → + sid → …), so the steps differ only in the columns they may use. `select_last`
    adds a step: the last step's groups thinned by cross-validation on the validation queries
    (`select_groups`), the ranker a user gets with `--select-groups`."""
    from recsage.features.group_selection import select_groups
    from recsage.features.pairs import group_shares
    from recsage.features.two_stage import fit_ranker, with_cv_rounds

    valid = build_ranking_data(retrievers, featurizer, split.valid.histories, n_candidates, split.exclude_seen)
    test = build_ranking_data(retrievers, featurizer, split.test.histories, n_candidates, split.exclude_seen)
    rows = []
    config = LambdaRankerConfig(seed=seed, **(ranker or {}))
    steps = list(steps)
    if steps:  # one CV-chosen budget for every step, on the richest one's features: the steps differ only in columns
        t = time.perf_counter()
        config = with_cv_rounds(valid, split.valid.targets, [n for n in valid.names if feature_group(n) in steps[-1][1]], config,
                                user_ids=split.valid.user_ids, seed=seed)
        rounds_s = time.perf_counter() - t
    selection: list[dict[str, Any]] | None = None
    if select_last and steps:
        t = time.perf_counter()
        kept, selection = select_groups(valid, split.valid.targets, config, user_ids=split.valid.user_ids, groups=steps[-1][1],
                                        folds=selection_folds, seed=seed)
        selection_s = time.perf_counter() - t
        steps.append((f"{steps[-1][0]}, groups chosen on validation", kept))
    for label, groups in steps:
        names = [n for n in valid.names if feature_group(n) in groups]
        t = time.perf_counter()
        r = fit_ranker(valid, split.valid.targets, names, config, user_ids=split.valid.user_ids, seed=seed, early_stop_share=early_stop_share)
        scores = r.predict(test.columns(names))
        rows.append({"method": f"ranker: {label}", "groups": groups, "n_features": len(names), **ranking_metrics(test, scores, split.test.targets, ks),
                     f"candidate_recall@{n_candidates}": test.candidates.recall(split.test.targets), "best_iteration": r.best_iteration_,
                     "ranker_seconds": round(time.perf_counter() - t, 1), "compact_rounds": config.compact_rounds, "rounds_cv_seconds": round(rounds_s, 1),
                     "gain_share": {g: round(v, 4) for g, v in group_shares(r.feature_importance()).items()}})
    if selection is not None:
        rows[-1].update({"group_selection": selection, "selection_seconds": round(selection_s, 1)})
    return rows
