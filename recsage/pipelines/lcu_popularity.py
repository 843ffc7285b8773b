"""LCU's user-agnostic comment ranking measured alone, on YouTube comment likes.

Which of a video's comments get the most likes, from what the comment says? Each feature group
is a column block of one LightGBM LambdaRank ranker, trained on the lists of a seeded video split
and scored on held-out videos, so the worth of the LLM's understanding (MiniLM embeddings, the
student's labels) is read off the same lists as the no-LLM surface counts.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.datasets.tables import Dataset
from recsage.knowledge.lcu.popularity import SURFACE_FEATURES, PopularityLists, popularity_lists, relevance_grades, surface_features

@dataclass
class PopularityData:
    """A comment dataset's ranking lists and its per-comment feature blocks (name → (matrix, column names))."""

    dataset: Dataset
    lists: PopularityLists
    blocks: dict[str, tuple[np.ndarray, list[str]]]


def load_youtube_popularity(path: str | Path) -> tuple[Dataset, PopularityLists]:
    from recsage.datasets.comments import load_youtube_comments

    ds = load_youtube_comments(path)
    return ds, popularity_lists(ds.comments)


def popularity_features(dataset: Dataset, lists: PopularityLists, *, embed=None, student=None, text_chars: int = 300) -> PopularityData:
    """Feature blocks per comment row: `surface` (counts, no model), `text` (MiniLM of the comment,
    its cosine to the video title), and with a `CommentLabelStudent` `labels` (its label
    probabilities; the student reads the comment and the title as LCU's post)."""
    from recsage.knowledge.lcu.student import student_inputs

    if embed is None:
        from recsage.llm.embed import Embedder

        embed = Embedder(batch_size=128).embed
    com, items = dataset.comments, dataset.items.set_index("item_id")
    texts = com["text"].astype(str).str.slice(0, text_chars).tolist()
    cvec = embed([t if t.strip() else " " for t in texts])
    titles = items.loc[com["item_id"].to_numpy(), "title"].astype(str).tolist()
    uniq = {t: j for j, t in enumerate(dict.fromkeys(titles))}
    tvec = embed(list(uniq))[[uniq[t] for t in titles]]
    cos = (cvec * tvec).sum(1, keepdims=True) / np.maximum(np.linalg.norm(cvec, axis=1, keepdims=True) * np.linalg.norm(tvec, axis=1, keepdims=True), 1e-9)
    blocks: dict[str, tuple[np.ndarray, list[str]]] = {
        "surface": (surface_features(com["text"].astype(str)), list(SURFACE_FEATURES)),
        "text": (np.concatenate([cvec, cos], 1).astype(np.float32), [f"minilm_{j}" for j in range(cvec.shape[1])] + ["title_cosine"]),
    }
    if student is not None:
        probs = student.predict_proba(student_inputs(cvec, tvec))
        blocks["labels"] = (probs.astype(np.float32), [re.sub(r"\W+", "_", f"label_{n}") for n in student.layout.names])  # LightGBM refuses JSON characters in names
    return PopularityData(dataset, lists, blocks)


def split_indices(n_lists: int, seed: int, fractions: tuple[float, float] = (0.7, 0.15)) -> dict[str, np.ndarray]:
    """Seeded video-level split of list indices: no video's comments are on two sides."""
    perm = np.random.default_rng(seed).permutation(n_lists)
    a, b = int(fractions[0] * n_lists), int((fractions[0] + fractions[1]) * n_lists)
    return {"train": np.sort(perm[:a]), "valid": np.sort(perm[a:b]), "test": np.sort(perm[b:])}


def split_lists(lists: PopularityLists, seed: int, fractions: tuple[float, float] = (0.7, 0.15)) -> dict[str, PopularityLists]:
    return {k: lists.subset(v) for k, v in split_indices(len(lists), seed, fractions).items()}


def ranking_metrics(lists: PopularityLists, scores: np.ndarray) -> dict[str, float]:
    """nDCG@1/3/5 and MRR of per-comment-row `scores` against log likes, per list."""
    from recsage.evaluation.engagement import list_ranking_metrics

    s, mask = lists.matrix(scores)
    g, _ = lists.matrix(lists.gains)
    return list_ranking_metrics(s, g, mask)


def popularity_baselines(data: PopularityData, lists: PopularityLists, seed: int = 0) -> dict[str, dict[str, float]]:
    """Rankings without a model: the source's own order (YouTube's "most relevant", itself
    popularity-biased: a reference, not a fair baseline), longest first, and random."""
    n = len(data.dataset.comments)
    order = np.zeros(n)
    for r in data.lists.rows:
        order[r] = -np.arange(len(r))  # first listed = highest score
    return {"source order (YouTube's ranking)": ranking_metrics(lists, order),
            "longest first": ranking_metrics(lists, data.blocks["surface"][0][:, 0]),
            "random": ranking_metrics(lists, np.random.default_rng(seed).random(n))}


def train_popularity_ranker(data: PopularityData, groups: tuple[str, ...], seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """LambdaRank over the chosen feature groups on the seed's split; test metrics, gain per group."""
    from recsage.recmodels.ranker import LambdaRanker, LambdaRankerConfig

    unknown = [g for g in groups if g not in data.blocks]
    if unknown:
        raise InvalidInputError(f"feature group(s) {unknown} not built; built: {sorted(data.blocks)}", field="groups")
    x_all = np.concatenate([data.blocks[g][0] for g in groups], 1)
    names = [n for g in groups for n in data.blocks[g][1]]
    idx = split_indices(len(data.lists), seed)
    split = {k: data.lists.subset(v) for k, v in idx.items()}
    ranker = LambdaRanker(LambdaRankerConfig(seed=seed, eval_at=5, n_threads=2))
    # A compact ranker (a few thousand lists) trains a fixed number of rounds and needs no
    # early-stopping slice, so the valid videos train it too; a large one early-stops on them.
    compact = ranker.is_compact(len(idx["train"]) + len(idx["valid"]))
    fit_lists = data.lists.subset(np.sort(np.concatenate([idx["train"], idx["valid"]]))) if compact else split["train"]
    t = time.perf_counter()
    rows, sizes = fit_lists.flat()
    valid = None
    if not compact:
        vrows, vsizes = split["valid"].flat()
        valid = (x_all[vrows], relevance_grades(data.lists.gains[vrows]), vsizes)
    ranker.fit(x_all[rows], relevance_grades(data.lists.gains[rows]), sizes, names, valid=valid)
    seconds = time.perf_counter() - t
    scores = np.zeros(len(x_all))
    test_rows, _ = split["test"].flat()
    scores[test_rows] = ranker.predict(x_all[test_rows])
    gain = ranker.feature_importance()
    total = sum(gain.values()) or 1.0
    by_group = {g: round(sum(gain[n] for n in data.blocks[g][1]) / total, 4) for g in groups}
    return ranker, {"test": ranking_metrics(split["test"], scores), "train_seconds": round(seconds, 2), "gain_share": by_group,
                    "lists": {k: len(v) for k, v in split.items()}, "fit_lists": len(fit_lists)}


def ablation_groups(data: PopularityData) -> list[tuple[str, ...]]:
    """Surface counts, then + text, + labels and + both (the label steps only when a student was given)."""
    steps = [("surface",), ("surface", "text")]
    if "labels" in data.blocks:
        steps += [("surface", "labels"), ("surface", "text", "labels")]
    return steps


def popularity_ablation(data: PopularityData, seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict[str, Any]]:
    """One row per (method, seed): the model-free baselines and a ranker per feature-group step,
    each seed its own video split (so the spread includes which videos are held out)."""
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        test = split_lists(data.lists, seed)["test"]
        for name, m in popularity_baselines(data, test, seed).items():
            rows.append({"method": f"baseline: {name}", "seed": seed, **m})
        for groups in ablation_groups(data):
            _, r = train_popularity_ranker(data, groups, seed)
            rows.append({"method": "ranker: " + " + ".join(groups), "seed": seed, **r["test"], "train_seconds": r["train_seconds"],
                         **{f"gain_{g}": v for g, v in r["gain_share"].items()}})
    return rows


def popularity_summary(rows: list[dict[str, Any]], metrics: tuple[str, ...] = ("ndcg@1", "ndcg@3", "ndcg@5", "mrr", "gain_labels")) -> list[dict[str, Any]]:
    """One row per method, in first-seen order: `<metric>` mean and `<metric>_std` over its seeds
    (metrics a method lacks, e.g. a baseline's label gain, are left out)."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        group = [r for r in rows if r["method"] == method]
        row: dict[str, Any] = {"method": method, "seeds": len(group)}
        for k in metrics:
            vals = [float(r[k]) for r in group if r.get(k) is not None and not np.isnan(r[k])]
            if vals:
                row[k], row[f"{k}_std"] = float(np.mean(vals)), float(np.std(vals))
        out.append(row)
    return out


def lcu_popularity(data: str | Path, *, student: str | Path | None = None, seeds: tuple[int, ...] = (0, 1, 2)) -> list[dict[str, Any]]:
    """`recsage lcu popularity`: the ablation on a YouTube comment-likes folder, with the labels of a
    saved student (e.g. a Reddit work folder's `student/`) when given."""
    from recsage.knowledge.lcu.student import CommentLabelStudent

    ds, lists = load_youtube_popularity(data)
    model = CommentLabelStudent.from_pretrained(student) if student is not None else None
    return popularity_ablation(popularity_features(ds, lists, student=model), seeds)
