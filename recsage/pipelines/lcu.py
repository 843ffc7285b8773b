"""LCU service functions: comment sections → teacher labels → student → engagement model → metrics.

The CLI (`recsage lcu …`), the workbench's Comments page and `bench_lcu.py` call these. Teacher
labels are an artifact: the job resumes from its parts folder, so a rerun (or a later session)
reuses every label already paid for.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.comment_sections import CommentSections, SectionConfig, build_comment_sections
from recsage.knowledge.lcu.annotate import AnnotationRun, CommentAnnotator, annotate_comments_batch, post_text, read_labels
from recsage.knowledge.lcu.labels import LabelLayout
from recsage.knowledge.lcu.student import CommentLabelStudent, student_inputs
from recsage.llm.batch import EngineConfig
from recsage.llm.registry import LLMConfig, backend_for, stage_for

COMMENT_EMBED_CHARS = 300  # the first ~75 tokens: MiniLM runs ~50 comments/s on 2 cores at 500 chars
SOURCES = ("reddit", "kuaicomt")


def load_sections(path: str | Path, *, source: str = "reddit", config: SectionConfig | None = None) -> CommentSections:
    """Comment-section examples from a Reddit-threads folder or a KuaiComt folder."""
    if source == "reddit":
        from recsage.datasets.comments import load_reddit_comments

        return build_comment_sections(load_reddit_comments(path), config)
    if source == "kuaicomt":
        from recsage.datasets.kuaicomt import load_kuaicomt

        return load_kuaicomt(path, config)
    raise InvalidInputError(f"unknown comment source {source!r}; known: {list(SOURCES)}", field="source")


def visible_rows(sections: CommentSections, split: str | None = None) -> np.ndarray:
    """Comment rows shown in some example (of one split, or of all)."""
    vis = sections.visible if split is None else sections.visible[sections.rows(split)]
    return np.unique(vis[vis >= 0])


def teacher_sample(sections: CommentSections, n: int, *, seed: int = 0) -> pd.DataFrame:
    """`n` comments visible in training examples, with text, grouped by item (the post stays in
    the LLM's prompt cache from one comment to the next)."""
    rows = visible_rows(sections, "train")
    com = sections.comments.iloc[rows]
    text = com["text"].astype(str).str.strip()
    com = com[(text != "") & ~text.isin(["[deleted]", "[removed]"])]
    if not len(com):
        raise InvalidInputError("no training comment has text to label", field="text")
    pick = com.sample(n=min(n, len(com)), random_state=seed)
    items = sections.items.set_index("item_id")
    posts = {i: post_text(items.loc[i].to_dict()) for i in pick["item_id"].unique()}
    out = pd.DataFrame({"comment_id": pick["comment_id"].astype(str), "item_id": pick["item_id"].to_numpy(),
                        "post": pick["item_id"].map(posts), "comment": pick["text"].astype(str).str.slice(0, 700)})
    return out.sort_values(["item_id", "comment_id"], kind="stable").reset_index(drop=True)


def annotate_comments(sections: CommentSections, out_dir: str | Path, *, n: int = 1000, seed: int = 0, llm: LLMConfig | None = None,
                      progress: bool = True, layout: LabelLayout | None = None, engine: EngineConfig | None = None) -> AnnotationRun:
    """The teacher job: `n` sampled training comments labelled by the LLM (resumes from `out_dir`)."""
    sample = teacher_sample(sections, n, seed=seed)
    annotator = CommentAnnotator(backend_for(engine, llm), layout or LabelLayout())
    meta_path = Path(out_dir) / "meta.json"
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta = {**previous, "component": "lcu.CommentAnnotator", "model": annotator.backend.model_id, "prompt": annotator.prompt_id,
            "layout": annotator.layout.version, "sample": {"n": int(len(sample)), "seed": seed, "from": "comments visible in training examples"}, "sections": sections.config.to_dict()}
    meta_path.write_text(json.dumps(meta, indent=2, default=str))  # written first: a killed job still says what produced its labels
    run = annotate_comments_batch(annotator, sample, out_dir, progress=progress, engine=engine, stage=stage_for(engine, llm))
    if run.summary.new_ok + run.summary.new_failed:  # a run that only skipped keeps the last measured throughput
        meta.update({"seconds": run.meta["seconds"], "comments_per_minute": run.meta["comments_per_minute"], "summary": run.summary.to_dict()})
    meta_path.write_text(json.dumps(meta, indent=2, default=str))
    return run


def section_embeddings(sections: CommentSections, embed=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MiniLM vectors of every kept item (rows = item_id) and of the comments shown in any example.

    Returns (item_text, comment_text, comment_rows): `comment_text[j]` embeds comment row
    `comment_rows[j]`. The embedder's disk cache makes a second run nearly free.
    """
    if embed is None:
        from recsage.llm.embed import Embedder

        embed = Embedder(batch_size=128).embed
    items = sections.items.sort_values("item_id")
    vecs = embed([post_text(r) or " " for r in items[["title", "description"]].to_dict("records")])
    item_text = np.zeros((int(items["item_id"].max()) + 1, vecs.shape[1]), np.float32)  # rows = item_id (a slice keeps global ids)
    item_text[items["item_id"].to_numpy()] = vecs
    rows = visible_rows(sections)
    texts = sections.comments["text"].astype(str).str.slice(0, COMMENT_EMBED_CHARS).to_numpy()[rows]
    comment_text = embed([t if t.strip() else " " for t in texts])
    return item_text, comment_text, rows


def distill_labels(sections: CommentSections, labels: pd.DataFrame, item_text: np.ndarray, comment_text: np.ndarray, comment_rows: np.ndarray,
                   *, holdout: float = 0.2, seed: int = 0, layout: LabelLayout | None = None) -> tuple[CommentLabelStudent, np.ndarray, dict[str, Any]]:
    """Trains the student on teacher labels (holding out a share to measure agreement), then
    labels every shown comment. Returns the student, the (len(comment_rows), width) label
    probabilities, and a report with agreement and throughput."""
    layout = layout or LabelLayout()
    ok = labels[labels["status"] == "ok"].copy()
    pos = pd.Series(np.arange(len(comment_rows)), index=sections.comments["comment_id"].astype(str).to_numpy()[comment_rows])
    ok = ok[ok["comment_id"].astype(str).isin(pos.index)]
    if len(ok) < 10:
        raise InvalidInputError(f"only {len(ok)} usable teacher labels: run `recsage lcu annotate` first", field="labels")
    idx = pos.loc[ok["comment_id"].astype(str)].to_numpy()
    item_of = sections.comments["item_id"].to_numpy()[comment_rows]
    x_all = lambda j: student_inputs(comment_text[j], item_text[item_of[j]])  # noqa: E731
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ok))
    n_test = int(round(holdout * len(ok)))
    test, train = perm[:n_test], perm[n_test:]
    t = time.perf_counter()
    student = CommentLabelStudent(layout, seed=seed).fit(x_all(idx[train]), ok.iloc[train].reset_index(drop=True))
    fit_s = time.perf_counter() - t
    agreement = student.agreement(x_all(idx[test]), ok.iloc[test].reset_index(drop=True)) if n_test else {}
    # the shipped student learns from every teacher label
    student = CommentLabelStudent(layout, seed=seed).fit(x_all(idx), ok.reset_index(drop=True))
    t = time.perf_counter()
    probs = np.concatenate([student.predict_proba(x_all(np.arange(lo, min(lo + 20000, len(comment_rows)))))
                            for lo in range(0, len(comment_rows), 20000)]) if len(comment_rows) else np.zeros((0, layout.width), np.float32)
    label_s = time.perf_counter() - t
    report = {"teacher_labels": int(len(ok)), "held_out": int(n_test), "agreement": agreement, "fit_seconds": round(fit_s, 2),
              "student_comments_per_minute": round(60 * len(comment_rows) / max(label_s, 1e-9)), "comments_labelled": int(len(comment_rows))}
    return student, probs, report


def engagement_tables(sections: CommentSections, item_text, comment_text, comment_rows, comment_labels=None):
    """The model's inputs with comment tables compacted to the shown comments."""
    from recsage.recmodels.engagement_inputs import engagement_inputs

    inputs = engagement_inputs(sections, item_text=item_text, comment_text=comment_text, comment_labels=comment_labels)
    remap = np.full(len(sections.comments), -1, np.int64)
    remap[comment_rows] = np.arange(len(comment_rows))
    inputs.comment_index = np.where(inputs.comment_index >= 0, remap[np.maximum(inputs.comment_index, 0)], -1)
    return inputs


def evaluate_engagement(model, inputs) -> dict[str, float]:
    """Main task (RMSE/MAE/XAUC on engagement, AUC on the long label) and both comment rankings."""
    from recsage.evaluation.engagement import auc, mae, rmse, xauc

    pred = model.predict(inputs)
    out = {"rmse": rmse(pred["engagement"], inputs.engagement), "mae": mae(pred["engagement"], inputs.engagement),
           "xauc": xauc(pred["engagement"], inputs.engagement), "auc": auc(pred["engagement"], inputs.long), "n": int(len(inputs))}
    out.update(comment_rankings(inputs, user_scores=pred["user_scores"] if model.config.lambda_user > 0 else None,
                                popular_scores=pred["popular_scores"] if model.config.lambda_popular > 0 else None))
    return out


def comment_rankings(inputs, *, user_scores: np.ndarray | None, popular_scores: np.ndarray | None) -> dict[str, float]:
    """`user_*` metrics of a ranking against the replied-to comments and `popular_*` against
    log upvotes, over the visible slots; a ranking that is None is left out."""
    from recsage.evaluation.engagement import list_ranking_metrics

    out: dict[str, float] = {}
    if user_scores is not None:
        out.update({f"user_{k}": v for k, v in list_ranking_metrics(user_scores, inputs.replied, inputs.mask).items()})
    if popular_scores is not None:
        out.update({f"popular_{k}": v for k, v in list_ranking_metrics(popular_scores, np.log1p(np.maximum(inputs.upvotes, 0)), inputs.mask).items()})
    return out


def ranking_baselines(inputs) -> dict[str, dict[str, float]]:
    """What ranking the visible comments without a model gives: newest first, oldest first."""
    k = inputs.mask.shape[1]
    newest = np.tile(np.arange(k, dtype=float), (len(inputs), 1))  # slots are oldest → newest
    return {name: comment_rankings(inputs, user_scores=s, popular_scores=s) for name, s in (("newest first", newest), ("oldest first", -newest))}


def train_engagement(sections: CommentSections, inputs, config=None, *, progress: bool = False, checkpoint_dir: str | Path | None = None):
    """Fits on the train split (best epoch by valid AUC) and scores valid and test. With
    `checkpoint_dir`, a killed fit resumes from its last finished epoch."""
    from recsage.recmodels.engagement import EngagementConfig, EngagementModel

    cfg = config or EngagementConfig()
    tr, va, te = (inputs.subset(sections.rows(s)) for s in ("train", "valid", "test"))
    model = EngagementModel(cfg, checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir)).fit(tr, va, progress=progress)
    res = model.train_result_
    return model, {"valid": evaluate_engagement(model, va), "test": evaluate_engagement(model, te), "train_seconds": round(res.seconds, 2),
                   "epochs": len(model.history_), "best_epoch": model.best_epoch_, "resumed_from_epoch": res.resumed_from, "config": cfg.to_dict()}


def fresh_checkpoints(directory: Path, run: dict[str, Any]) -> Path:
    """`directory` ready for a run described by `run`: a killed run's checkpoints are kept only
    when they belong to the same run (config and input sizes), so a changed setting never
    silently continues another model."""
    record = directory / "run.json"
    if directory.exists() and (not record.exists() or json.loads(record.read_text()) != json.loads(json.dumps(run, default=str))):
        shutil.rmtree(directory)
        print(f"{directory}: checkpoints of a different run removed; training from scratch")
    directory.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(run, indent=2, default=str))
    return directory


def with_inputs(config, *, text: bool, labels: bool, aux_user: bool, aux_popular: bool, defaults=None):
    """An engagement config with the ablation switches set (λ from `defaults` when on)."""
    from recsage.recmodels.engagement import EngagementConfig

    base = defaults or EngagementConfig()
    return replace(config, use_text=text, use_labels=labels, lambda_user=base.lambda_user if aux_user else 0.0,
                   lambda_popular=base.lambda_popular if aux_popular else 0.0)


# ---- the work folder the CLI steps share: sections.json, teacher/, student/, comment_labels.parquet, model/ ----
def work_sections(data: str | Path, out: str | Path, *, source: str = "reddit", config: SectionConfig | None = None) -> CommentSections:
    """Sections built with the folder's recorded settings (first use records them)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rec = out / "sections.json"
    if config is None and rec.exists():
        saved = json.loads(rec.read_text())
        config = SectionConfig(**{**saved["config"], "split_fractions": tuple(saved["config"]["split_fractions"])})
        source = saved.get("source", source)
    sections = load_sections(data, source=source, config=config)
    record_sections(out, sections, data=data, source=source)
    return sections


def record_sections(out: Path, sections: CommentSections, *, data: str | Path, source: str) -> None:
    """out/sections.json: where the folder's examples come from and how they were built."""
    (out / "sections.json").write_text(json.dumps({"source": source, "data": str(Path(data).resolve()), "config": sections.config.to_dict(),
                                                   "summary": sections.summary()}, indent=2, default=str))


def lcu_distill(data: str | Path, out: str | Path, *, source: str = "reddit", seed: int = 0) -> dict[str, Any]:
    """Student from the teacher labels in out/teacher; every shown comment labelled into
    out/comment_labels.parquet (probabilities per label value + the hard labels)."""
    out = Path(out)
    sections = work_sections(data, out, source=source)
    labels = read_labels(out / "teacher")
    item_text, comment_text, rows = section_embeddings(sections)
    student, probs, report = distill_labels(sections, labels, item_text, comment_text, rows, seed=seed)
    student.save_pretrained(out / "student")
    save_comment_labels(out, sections, student, probs, rows)
    (out / "distill.json").write_text(json.dumps(report, indent=2))
    return report


def save_comment_labels(out: Path, sections: CommentSections, student: CommentLabelStudent, probs: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
    """out/comment_labels.parquet: per shown comment, the label probabilities and the hard labels."""
    hard = student.labels_from_proba(probs)
    frame = pd.DataFrame(probs, columns=student.layout.names)
    frame.insert(0, "comment_id", sections.comments["comment_id"].astype(str).to_numpy()[rows])
    frame.insert(1, "item_id", sections.comments["item_id"].to_numpy()[rows])
    for f in ("kind", "sentiment", "informative", "relevance", "topics"):
        frame[f] = [h[f] for h in hard]
    frame.to_parquet(Path(out) / "comment_labels.parquet", index=False)
    return frame


def load_comment_labels(out: str | Path, sections: CommentSections, rows: np.ndarray) -> np.ndarray:
    """Student label probabilities aligned with `rows` (comment rows), from out/comment_labels.parquet."""
    path = Path(out) / "comment_labels.parquet"
    if not path.exists():
        raise InvalidInputError("no comment labels yet: run `recsage lcu distill` first", file=str(path))
    frame = pd.read_parquet(path)
    names = LabelLayout().names
    ids = sections.comments["comment_id"].astype(str).to_numpy()[rows]
    got = frame.set_index("comment_id").reindex(ids)
    if got[names[0]].isna().any():
        raise InvalidInputError(f"{int(got[names[0]].isna().sum())} shown comments have no label: rerun `recsage lcu distill`", file=str(path))
    return got[names].to_numpy(np.float32)


def folder_inputs(out: str | Path, sections: CommentSections, *, use_labels: bool):
    """The engagement model's inputs for a work folder: embeddings, plus the folder's student labels when asked."""
    item_text, comment_text, rows = section_embeddings(sections)
    labels = load_comment_labels(out, sections, rows) if use_labels else None
    return engagement_tables(sections, item_text, comment_text, rows, labels)


def lcu_train(data: str | Path, out: str | Path, config=None, *, source: str = "reddit", progress: bool = True) -> dict[str, Any]:
    """Engagement model on the folder's sections; saved to out/model with out/metrics.json."""
    from recsage.recmodels.engagement import EngagementConfig

    out = Path(out)
    cfg = config or EngagementConfig()
    if cfg.use_labels and not (out / "comment_labels.parquet").exists():  # before any embedding work
        raise InvalidInputError("no comment labels yet: run `recsage lcu distill` first (or train with --no-labels)", file=str(out / "comment_labels.parquet"))
    sections = work_sections(data, out, source=source)
    inputs = folder_inputs(out, sections, use_labels=cfg.use_labels)
    sizes = {"id_sizes": inputs.id_sizes, "slot_sizes": inputs.slot_sizes, "text_dim": int(inputs.item_text.shape[1]) if cfg.use_text else None,
             "label_dim": int(inputs.comment_labels.shape[1]) if inputs.comment_labels is not None else None}
    ckpt = fresh_checkpoints(out / "checkpoints", {"config": cfg.to_dict(), "sizes": sizes, "examples": len(inputs)})
    model, metrics = train_engagement(sections, inputs, cfg, progress=progress, checkpoint_dir=ckpt)
    model.save_pretrained(out / "model", sizes=sizes)
    shutil.rmtree(ckpt)  # the finished model is saved; a later run starts fresh
    metrics["baselines"] = ranking_baselines(inputs.subset(sections.rows("test")))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    return metrics


def lcu_evaluate(data: str | Path, out: str | Path, *, split: str = "test", source: str = "reddit") -> dict[str, Any]:
    from recsage.recmodels.engagement import EngagementModel

    out = Path(out)
    model = EngagementModel.from_pretrained(out / "model")
    sections = work_sections(data, out, source=source)
    inputs = folder_inputs(out, sections, use_labels=model.config.use_labels)
    return evaluate_engagement(model, inputs.subset(sections.rows(split)))


# ---- the workbench's Comments page reads these ----
@dataclass
class CommentsView:
    """An LCU work folder opened for browsing: sections, student labels, the trained model's outputs."""

    out: Path
    sections: CommentSections
    labels: pd.DataFrame  # index comment_id: hard labels + probabilities of every shown comment
    predictions: dict[str, np.ndarray] | None  # per example (all splits), from the saved model
    metrics: dict[str, Any]


def open_comments(out: str | Path) -> CommentsView:
    out = Path(out)
    rec = out / "sections.json"
    if not rec.exists():
        raise InvalidInputError("not an LCU work folder (no sections.json): run `recsage lcu annotate --out …` first", file=str(rec))
    data = json.loads(rec.read_text()).get("data")
    if not data or not Path(data).exists():
        raise InvalidInputError(f"the comment data this folder was built from is not here: {data}", file=str(rec), field="data")
    sections = work_sections(data, out)
    path = out / "comment_labels.parquet"
    labels = pd.read_parquet(path).set_index("comment_id") if path.exists() else pd.DataFrame()
    predictions = None
    if (out / "model" / "config.json").exists():
        from recsage.recmodels.engagement import EngagementModel

        model = EngagementModel.from_pretrained(out / "model")
        predictions = model.predict(folder_inputs(out, sections, use_labels=model.config.use_labels))
    metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").exists() else {}
    return CommentsView(out, sections, labels, predictions, metrics)


def thread_list(view: CommentsView, split: str = "test", limit: int = 300) -> pd.DataFrame:
    """Threads of one split with the most examples first."""
    ex = view.sections.examples
    ex = ex[ex["split"] == split]
    counts = ex.groupby("item_id").size().sort_values(ascending=False).head(limit)
    titles = view.sections.items.set_index("item_id")["title"].astype(str)
    return pd.DataFrame({"item_id": counts.index, "title": titles.loc[counts.index].str.slice(0, 90).to_numpy(), "users": counts.to_numpy()})


def _label_columns(view: CommentsView, comment_ids: list[str]) -> pd.DataFrame:
    cols = ["kind", "sentiment", "informative", "relevance", "topics"]
    if not len(view.labels):
        return pd.DataFrame(index=comment_ids, columns=cols)
    return view.labels.reindex(comment_ids)[cols]


def thread_comments(view: CommentsView, item_id: int, limit: int = 60) -> pd.DataFrame:
    """The thread's comments in time order with their labels."""
    com = view.sections.comments
    c = com[com["item_id"] == item_id].head(limit)
    out = pd.DataFrame({"comment_id": c["comment_id"].astype(str).to_numpy(), "author": c["user"].astype("string").fillna("[deleted]").to_numpy(),
                        "upvotes": c["likes"].to_numpy(), "text": c["text"].astype(str).str.slice(0, 200).to_numpy()})
    return pd.concat([out, _label_columns(view, out["comment_id"].tolist()).reset_index(drop=True)], axis=1)


def thread_users(view: CommentsView, item_id: int) -> list[str]:
    ex = view.sections.examples
    return ex.loc[ex["item_id"] == item_id, "user"].astype(str).tolist()


def user_engagement(view: CommentsView, item_id: int, user: str) -> dict[str, Any]:
    """A user's predicted engagement in a thread, and the reasons: the comments they saw, with
    labels and the model's two ranking scores."""
    ex = view.sections.examples
    hit = np.flatnonzero((ex["item_id"].to_numpy() == item_id) & (ex["user"].astype(str).to_numpy() == str(user)))
    if not len(hit):
        raise InvalidInputError(f"user {user!r} did not comment in thread {item_id}", field="user")
    i = int(hit[0])
    vis = view.sections.visible[i]
    rows = vis[vis >= 0]
    com = view.sections.comments.iloc[rows]
    seen = pd.DataFrame({"comment_id": com["comment_id"].astype(str).to_numpy(), "author": com["user"].astype("string").fillna("[deleted]").to_numpy(),
                         "text": com["text"].astype(str).str.slice(0, 160).to_numpy(), "upvotes": view.sections.upvotes[i][vis >= 0],
                         "replied": view.sections.replied[i][vis >= 0].astype(bool)})
    seen = pd.concat([seen, _label_columns(view, seen["comment_id"].tolist()).reset_index(drop=True)], axis=1)
    out: dict[str, Any] = {"user": str(user), "item_id": int(item_id), "split": ex["split"].iat[i], "actual_minutes": float(ex["engagement"].iat[i]),
                           "actual_long": bool(ex["long"].iat[i]), "comments_written": int(ex["n_user_comments"].iat[i])}
    if view.predictions is not None:
        p = view.predictions
        out.update({"predicted_minutes": float(p["engagement"][i]), "p_long": float(p["p_long"][i])})
        seen["user-specific score"] = p["user_scores"][i][vis >= 0]
        seen["popularity score"] = p["popular_scores"][i][vis >= 0]
    lab = seen.dropna(subset=["kind"]) if "kind" in seen else seen.iloc[:0]
    if len(lab):
        parts = [f"{int((lab['kind'] == k).sum())} {k}" for k in lab["kind"].value_counts().index]
        out["reasons"] = (f"saw {len(seen)} comments ({', '.join(parts)}); {int((lab['informative'] == '2').sum())} informative, "
                          f"{int((lab['sentiment'] == 'positive').sum())} positive, {int((lab['sentiment'] == 'negative').sum())} negative")
    else:
        out["reasons"] = f"saw {len(seen)} comments" + ("" if len(seen) else " (the first to comment)")
    out["seen"] = seen
    return out


def artifact_student(dataset, labels_dir: str | Path, embed=None, *, seed: int = 0) -> tuple[CommentLabelStudent, dict[str, Any]]:
    """A student fitted on a teacher-label artifact (e.g. the committed benchmark labels) for
    comments of `dataset` (a loaded comment dataset): embeds only the labelled comments."""
    if embed is None:
        from recsage.llm.embed import Embedder

        embed = Embedder(batch_size=128).embed
    labels = read_labels(labels_dir)
    labels = labels[labels["status"] == "ok"]
    com = dataset.comments.assign(comment_id=dataset.comments["comment_id"].astype(str)).set_index("comment_id")
    labels = labels[labels["comment_id"].astype(str).isin(com.index)].reset_index(drop=True)
    if len(labels) < 10:
        raise InvalidInputError(f"only {len(labels)} teacher labels in {labels_dir} match this dataset", file=str(labels_dir))
    rows = com.loc[labels["comment_id"].astype(str)]
    items = dataset.items.set_index("item_id")
    posts = [post_text(items.loc[i].to_dict()) or " " for i in rows["item_id"]]
    texts = [t if t.strip() else " " for t in rows["text"].astype(str).str.slice(0, COMMENT_EMBED_CHARS)]
    x = student_inputs(embed(texts), embed(posts))
    student = CommentLabelStudent(seed=seed).fit(x, labels)
    return student, {"teacher_labels": int(len(labels)), "source": str(labels_dir)}


def demo_lcu(reddit_dir: str | Path, out: str | Path, labels_dir: str | Path, *, llm: LLMConfig | None = None, max_threads: int = 400,
             n_live: int = 3, seconds: float = 30) -> dict[str, Any]:
    """The demo's LCU step on the most recent `max_threads` Reddit threads. The embedded LLM labels
    `n_live` comments live. A student fitted on the committed teacher labels labels every shown
    comment. The engagement model trains for `seconds`, and one test user's prediction is explained."""
    from recsage.datasets.comments import load_reddit_comments
    from recsage.llm.embed import Embedder
    from recsage.recmodels.engagement import EngagementConfig

    out = Path(out)
    dataset = load_reddit_comments(reddit_dir)
    sections = build_comment_sections(dataset, SectionConfig(max_threads=max_threads))
    out.mkdir(parents=True, exist_ok=True)
    record_sections(out, sections, data=reddit_dir, source="reddit")
    live = annotate_comments(sections, out / "teacher", n=n_live, llm=llm, progress=False)
    embedder = Embedder(batch_size=128)
    student, sreport = artifact_student(dataset, labels_dir, embedder.embed)
    item_text, comment_text, rows = section_embeddings(sections, embedder.embed)
    probs = student.predict_proba(student_inputs(comment_text, item_text[sections.comments["item_id"].to_numpy()[rows]]))
    labels = save_comment_labels(out, sections, student, probs, rows).set_index("comment_id")
    inputs = engagement_tables(sections, item_text, comment_text, rows, probs)
    model, metrics = train_engagement(sections, inputs, EngagementConfig(epochs=3, time_budget_seconds=seconds))
    model.save_pretrained(out / "model", sizes={"id_sizes": inputs.id_sizes, "slot_sizes": inputs.slot_sizes, "text_dim": int(item_text.shape[1]),
                                                "label_dim": int(probs.shape[1])})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    view = CommentsView(out, sections, labels, model.predict(inputs), metrics)
    test = sections.examples.iloc[sections.rows("test")]
    pick = test[(sections.visible[sections.rows("test")] >= 0).sum(1) >= 3].head(1)
    explained = user_engagement(view, int(pick["item_id"].iat[0]), str(pick["user"].iat[0])) if len(pick) else None
    live_rows = live.labels.merge(teacher_sample(sections, n_live)[["comment_id", "comment"]], on="comment_id")
    return {"sections": {k: sections.summary()[k] for k in ("examples", "per_split", "long_threshold_minutes")},
            "live_labels": [{"comment": str(r["comment"])[:70], **{f: r.get(f) for f in ("kind", "sentiment", "informative", "relevance", "topics")},
                             "status": r["status"]} for r in live_rows.to_dict("records")],
            "model": live.meta["model"], "student": sreport, "test": {k: metrics["test"][k] for k in ("auc", "xauc", "rmse", "user_ndcg@1", "popular_ndcg@1")},
            "explained": None if explained is None else {k: explained[k] for k in ("user", "predicted_minutes", "actual_minutes", "reasons")},
            "out": str(out)}
