"""TagCF service functions: vocabularies, item tagging, the role graph, features, role identification."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset
from recsage.knowledge.tagcf.extract import ItemTagger, normalise_tag_frame, propose_tags, shortlist_tags, tag_items_batch, tags_from_metadata
from recsage.knowledge.tagcf.features import features_frame, item_features, logic_matrix, tag_matrices, user_features
from recsage.knowledge.tagcf.graph import RoleGraph
from recsage.knowledge.tagcf.roles import fit_temperature, graph_role_scores, majority_prediction, ranked_from_scores, role_metrics, topic_frequency_prediction
from recsage.knowledge.tagcf.vocab import STARTER_ROLES, TagVocabulary, consolidate, load_role_groups, seed_vocabulary
from recsage.llm.base import LLMBackend
from recsage.llm.batch import EngineConfig
from recsage.llm.registry import LLMConfig, backend_for, get_backend, stage_for

ROLE_RENAMES = {"other": "other occupation", "none": "no occupation", "M": "male", "F": "female"}


def role_name(group: str, value: str) -> str:
    """Readable role names shared by the vocabulary and the evaluation (e.g. 'age 25-34')."""
    value = str(value)
    if group == "age":
        return f"age {value}"
    return ROLE_RENAMES.get(value, value)


def user_role_labels(dataset: Dataset) -> pd.DataFrame:
    """Ground-truth roles per user (MovieLens profiles): user_id, occupation, age, gender columns."""
    users = dataset.users
    if users is None or not len(users):
        raise InvalidInputError(f"dataset '{dataset.name}' has no user profiles to seed or evaluate roles", field="users")
    out = pd.DataFrame({"user_id": users["user_id"].astype("int64")})
    if "occupation" in users:
        out["occupation"] = [role_name("occupation", v) for v in users["occupation"]]
    if "age_band" in users:
        out["age"] = [role_name("age", v) for v in users["age_band"]]
    if "gender" in users:
        out["gender"] = [role_name("gender", v) for v in users["gender"]]
    return out


def seed_vocabularies(dataset: Dataset, roles_file: str | Path | None = None) -> tuple[TagVocabulary, TagVocabulary]:
    """Topics from item genres/categories; roles from user profiles when the data has them, else
    from a role list file (`roles_file`, default: the shipped starter roles)."""
    items = dataset.items
    if items is None or "categories" not in items:
        raise InvalidInputError(f"dataset '{dataset.name}' has no item categories to seed topics", field="categories")
    cats = pd.Series([c for cs in items["categories"] for c in (list(cs) if cs is not None else [])])
    cats = cats[~cats.str.lower().isin(["unknown", ""])]
    counts = cats.value_counts()
    # Amazon category paths repeat the root ("Industrial & Scientific") on every item: it says nothing
    keep = [c for c, n in counts.items() if n < 0.9 * len(items)][:60]
    topics = seed_vocabulary("topic", {"category": keep})
    groups: dict[str, list[str]] = {}
    if dataset.users is not None and len(dataset.users):
        labels = user_role_labels(dataset)
        for g in ("occupation", "age", "gender"):
            if g in labels:
                groups[g] = sorted(labels[g].unique())
    if roles_file is not None or not groups:
        groups = {**groups, **load_role_groups(roles_file or STARTER_ROLES)}
    roles = seed_vocabulary("role", groups)
    return topics, roles


def build_vocabularies(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    llm: LLMConfig | None = None,
    extend: bool = True,
    sample_items: int = 120,
    threshold: float = 0.82,
    min_count: int = 2,
    roles_file: str | Path | None = None,
) -> dict[str, Any]:
    """Seed from data, extend with LLM proposals on the most popular items, consolidate, save."""
    from recsage.llm.embed import Embedder

    out = Path(out_dir)
    topics, roles = seed_vocabularies(dataset, roles_file)
    report: dict[str, Any] = {"seed_topics": len(topics), "seed_roles": len(roles)}
    if extend:
        backend = get_backend(config=llm or LLMConfig.from_env())
        items = popular_items(dataset).head(sample_items).to_dict("records")
        embedder = Embedder()
        t0 = time.perf_counter()
        for kind in ("topic", "role"):
            base = topics if kind == "topic" else roles
            proposals = propose_tags(backend, items, kind)
            merged, rep = consolidate(base, proposals, embedder.embed, threshold=threshold, min_count=min_count,
                                      exclude=topics if kind == "role" else None)
            report[kind] = rep.to_dict()
            if kind == "topic":
                topics = merged
            else:
                roles = merged
        report["llm_seconds"] = round(time.perf_counter() - t0, 1)
        report["model"] = backend.model_id
    topics.save(out / "topics.json")
    roles.save(out / "roles.json")
    report |= {"topics": len(topics), "roles": len(roles), "topics_version": topics.version, "roles_version": roles.version}
    (out / "vocabulary_report.json").write_text(json.dumps(report, indent=2))
    return report


def popular_items(dataset: Dataset) -> pd.DataFrame:
    """Items ordered by interaction count (ties by id): partial tagging runs cover the most behaviour first."""
    counts = dataset.interactions["item_id"].value_counts()
    items = dataset.items.copy()
    items["n_interactions"] = items["item_id"].map(counts).fillna(0).astype(int)
    return items.sort_values(["n_interactions", "item_id"], ascending=[False, True]).reset_index(drop=True)


def tag_items(
    dataset: Dataset,
    vocab_dir: str | Path,
    out_dir: str | Path,
    *,
    llm: LLMConfig | None = None,
    limit: int | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    engine: EngineConfig | None = None,
    shortlist: int = 12,
) -> dict[str, Any]:
    """LLM tags for the `limit` most popular items (all by default), resumable; writes item_tags.parquet
    merging LLM tags with the data-derived topics every item has. `shortlist` > 0 shows each item
    only its nearest topics (and 8 roles) in a per-item shuffled order when the vocabulary has more
    than twice as many topics (`tagging_records`); 0 shows the whole vocabulary, in its own order."""
    vocab_dir, out = Path(vocab_dir), Path(out_dir)
    topics, roles = TagVocabulary.load(vocab_dir / "topics.json"), TagVocabulary.load(vocab_dir / "roles.json")
    records = tagging_records(dataset, topics, roles, limit=limit, shortlist=shortlist)
    used = shortlist if len(records) and "candidate_topics" in records else 0
    base = {"topics_version": topics.version, "roles_version": roles.version, "items_total": len(dataset.items), "shortlist": used}
    if len(records):
        tagger = ItemTagger(backend_for(engine, llm), topics, roles)
        run = tag_items_batch(tagger, records, out / "llm_tags", progress=progress, retry_failed=retry_failed,
                              engine=engine, stage=stage_for(engine, llm))
        if used:
            run.meta["prompt"] = f"{run.meta['prompt']}+shortlist@{used}"
        llm_tags = run.tags
        failed = int((llm_tags["status"] != "ok").sum()) if len(llm_tags) else 0
        meta = {**run.meta, **run.summary.to_dict(), "items_tagged_by_llm": int((llm_tags["status"] == "ok").sum()) if len(llm_tags) else 0,
                "items_failed": failed, **base}
    else:  # data-derived topics only
        llm_tags = pd.DataFrame(columns=["item_id", "status", "topics", "roles", "confidence"])
        meta = {"component": "tagcf.metadata", "model": None, "items_tagged_by_llm": 0, "items_failed": 0, **base}
    merge_tags(tags_from_metadata(dataset.items, topics), llm_tags).to_parquet(out / "item_tags.parquet", index=False)
    (out / "item_tags.json").write_text(json.dumps(meta, indent=2, default=str))
    return meta


def tagging_records(dataset: Dataset, topics: TagVocabulary, roles: TagVocabulary, *, limit: int | None = None, shortlist: int = 12) -> pd.DataFrame:
    """The items to tag, most popular first, each with its shortlist of candidate tags when
    `shortlist` > 0 and the topic vocabulary has more than twice that many tags (`shortlist_tags`).

    Measured (bench_tagcf --part tags, categories/genres held out): on Amazon Scientific's 60
    topics the shortlist raised precision .23 → .31 and recall .30 → .39 and ended the pull of the
    first entries; on MovieLens' 18 genres a 12-tag shortlist cut recall (.47 → .39: the title
    alone often misses a true genre), so small vocabularies are shown whole."""
    items = popular_items(dataset)
    if limit is not None:
        items = items.head(limit)
    records = items.drop(columns=["n_interactions"])
    if shortlist > 0 and len(topics) > 2 * shortlist and len(records):
        from recsage.llm.embed import Embedder

        records = shortlist_tags(records, topics, roles, Embedder().embed, k_topics=shortlist)
    return records


def merge_tags(metadata_tags: pd.DataFrame, llm_tags: pd.DataFrame) -> pd.DataFrame:
    """Union of data-derived and LLM topics; roles come from the LLM only. `llm` says which items it tagged."""
    base = normalise_tag_frame(metadata_tags).set_index("item_id")
    base["llm"] = False
    if len(llm_tags):
        ok = normalise_tag_frame(llm_tags[llm_tags["status"] == "ok"]).set_index("item_id")
        for iid, row in ok.iterrows():
            if iid in base.index:
                base.at[iid, "topics"] = list(dict.fromkeys(list(base.at[iid, "topics"]) + list(row["topics"])))
                base.at[iid, "roles"] = list(row["roles"])
                base.at[iid, "confidence"] = float(row.get("confidence", 1.0))
                base.at[iid, "llm"] = True
    return base.reset_index()[["item_id", "topics", "roles", "confidence", "llm"]]


# ---------------- graph, model inputs, features, roles ----------------
REVIEWED_TAGS = "reviewed_tags.parquet"


def load_item_tags(tags_dir: str | Path) -> pd.DataFrame:
    """Item tags for the graph and models; tags an analyst reviewed (workbench Tagging page,
    `save_reviewed_tags`) replace the LLM's for those items."""
    path = Path(tags_dir) / "item_tags.parquet"
    if not path.exists():
        raise InvalidInputError("no item_tags.parquet: run `recsage tagcf extract` first", file=str(path))
    tags = normalise_tag_frame(pd.read_parquet(path))
    reviewed_path = Path(tags_dir) / REVIEWED_TAGS
    if reviewed_path.exists():
        reviewed = pd.read_parquet(reviewed_path).set_index("item_id")
        tags = tags.set_index("item_id")
        known = reviewed.index.intersection(tags.index)
        for col in ("topics", "roles"):
            tags.loc[known, col] = pd.Series([list(v) for v in reviewed.loc[known, col]], index=known, dtype=object)
        tags = tags.reset_index()
    return tags


def preview_tags(dataset: Dataset, tags_dir: str | Path, item_ids: list[int], *, llm: LLMConfig | None = None,
                 backend: LLMBackend | None = None) -> pd.DataFrame:
    """LLM tags for a few chosen items (nothing saved): one row per item with the validated JSON,
    or the error and raw output when the model failed."""
    topics, roles = TagVocabulary.load(Path(tags_dir) / "topics.json"), TagVocabulary.load(Path(tags_dir) / "roles.json")
    items = dataset.items.set_index("item_id")
    unknown = [i for i in item_ids if i not in items.index]
    if unknown:
        raise InvalidInputError(f"unknown item id(s) {unknown[:5]}", field="item_id")
    tagger = ItemTagger(backend or get_backend(config=llm or LLMConfig.from_env()), topics, roles)
    records = [{"item_id": int(i), **items.loc[i].to_dict()} for i in item_ids]
    rows = []
    for rec, t in zip(records, tagger.tag(records)):
        ok = t.status == "ok"
        rows.append({"item_id": t.item_id, "title": str(rec.get("title", ""))[:80], "status": t.status, "topics": "; ".join(t.topics), "roles": "; ".join(t.roles),
                     "confidence": t.confidence, "json": json.dumps({"topics": list(t.topics), "roles": list(t.roles), "confidence": t.confidence}) if ok else "",
                     "error": t.error or "", "raw": "" if ok else (t.raw or "")[:300]})
    return pd.DataFrame(rows)


def tag_preview_partial(out: str | Path) -> Path:
    """Where `write_tag_preview` keeps the items finished so far (the job monitor counts them)."""
    out = Path(out)
    return out.with_name(out.stem + ".partial.parquet")


def write_tag_preview(dataset: Dataset, tags_dir: str | Path, item_ids: list[int], out: str | Path, *, llm: LLMConfig | None = None,
                      backend: LLMBackend | None = None, echo: Any = print) -> pd.DataFrame:
    """`preview_tags` one item at a time into `out` (Parquet), for the workbench's background job:
    each finished item is kept in `<out>.partial.parquet`, so a rerun after a kill tags only the rest,
    and `out` appears (atomically) only when every item is done; `echo` reports progress per item."""
    out = Path(out)
    partial = tag_preview_partial(out)
    done = pd.read_parquet(partial) if partial.exists() else pd.DataFrame()
    finished = set(done["item_id"].astype(int)) if len(done) else set()
    for n, item in enumerate(item_ids, 1):
        if int(item) not in finished:
            backend = backend or get_backend(config=llm or LLMConfig.from_env())
            done = pd.concat([done, preview_tags(dataset, tags_dir, [int(item)], backend=backend)], ignore_index=True)
            done.to_parquet(partial.with_suffix(".tmp"), index=False)
            partial.with_suffix(".tmp").replace(partial)
        echo(f"tagged {n}/{len(item_ids)} items (item {item})")
    frame = done.set_index(done["item_id"].astype(int)).loc[[int(i) for i in item_ids]].reset_index(drop=True)
    frame.to_parquet(out.with_suffix(".tmp"), index=False)
    out.with_suffix(".tmp").replace(out)
    partial.unlink(missing_ok=True)
    return frame


def save_reviewed_tags(tags_dir: str | Path, rows: pd.DataFrame) -> dict[str, Any]:
    """Accept analyst-edited tags (`item_id`, `topics`, `roles`; lists or "a; b" strings). Every tag
    must be in the vocabulary (an alias maps to its canonical tag); a bad row is refused with its
    item and field, and nothing is written. Later saves replace earlier ones per item."""
    tags_dir = Path(tags_dir)
    path = tags_dir / REVIEWED_TAGS
    vocabs = {"topics": TagVocabulary.load(tags_dir / "topics.json"), "roles": TagVocabulary.load(tags_dir / "roles.json")}
    clean = []
    for rec in rows.to_dict("records"):
        out: dict[str, Any] = {"item_id": int(rec["item_id"])}
        for field, vocab in vocabs.items():
            value = rec.get(field)
            names = value.split(";") if isinstance(value, str) else list(value if value is not None else [])
            canon = []
            for name in (str(n).strip() for n in names):
                if not name:
                    continue
                c = vocab.lookup(name)
                if c is None:
                    raise InvalidInputError(f"{name!r} is not in the {field} vocabulary ({len(vocab)} tags)", file=str(path), record=out["item_id"], field=field)
                canon.append(c)
            out[field] = list(dict.fromkeys(canon))
        if not out["topics"]:
            raise InvalidInputError("an item needs at least one topic", file=str(path), record=out["item_id"], field="topics")
        clean.append(out)
    new = pd.DataFrame(clean, columns=["item_id", "topics", "roles"])
    if path.exists():
        old = pd.read_parquet(path)
        new = pd.concat([old[~old["item_id"].isin(new["item_id"])], new], ignore_index=True)
    tmp = path.with_suffix(".tmp")
    new.sort_values("item_id").to_parquet(tmp, index=False)
    tmp.replace(path)
    return {"saved": len(clean), "reviewed_items": len(new), "file": str(path)}


def ensure_vocabularies(dataset: Dataset, tags_dir: str | Path) -> tuple[TagVocabulary, TagVocabulary]:
    """The tags folder's vocabularies; seeded from the data (no LLM) when the folder has none."""
    tags_dir = Path(tags_dir)
    if not (tags_dir / "topics.json").exists():
        build_vocabularies(dataset, tags_dir, extend=False)
    return TagVocabulary.load(tags_dir / "topics.json"), TagVocabulary.load(tags_dir / "roles.json")


def split_users(user_ids: np.ndarray, test_share: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Users whose profiles build the graph vs users whose roles are identified (never both)."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(sorted(user_ids))
    mask = rng.random(len(ids)) < test_share
    return ids[~mask], ids[mask]


def build_role_graph(
    dataset: Dataset,
    tags_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    train_users: np.ndarray | None = None,
    interactions: pd.DataFrame | None = None,
    llm_weight: float = 0.5,
) -> RoleGraph:
    """Graph over the tagging vocabularies. Behavioural evidence uses profile roles of
    `train_users` (all profiled users by default) and `interactions` (all by default; pass the
    training part of a split so test interactions never shape the graph)."""
    tags_dir = Path(tags_dir)
    topics, roles = TagVocabulary.load(tags_dir / "topics.json"), TagVocabulary.load(tags_dir / "roles.json")
    item_tags = load_item_tags(tags_dir)
    user_roles = None
    if dataset.users is not None and len(dataset.users):
        user_roles = user_role_labels(dataset)
        if train_users is not None:
            user_roles = user_roles[user_roles["user_id"].isin(set(int(u) for u in train_users))]
    graph = RoleGraph.build(roles.names, topics.names, item_tags, interactions if interactions is not None else dataset.interactions,
                            user_roles, llm_weight=llm_weight)
    if out_dir is not None:
        graph.save(out_dir)
        (Path(out_dir) / "graph_stats.json").write_text(json.dumps(graph.stats(), indent=2))
    return graph


def tagcf_inputs(item_tags: pd.DataFrame, n_items: int, graph: RoleGraph) -> tuple[np.ndarray, np.ndarray]:
    """What `TagCFRecommender` consumes: item×[topics|roles] matrix and the block logic matrix."""
    mt, mr = tag_matrices(item_tags, n_items, graph.topics, graph.roles)
    return np.concatenate([mt, mr], axis=1), logic_matrix(graph)


def split_interactions(dataset: Dataset, split) -> pd.DataFrame:
    """The training part of a split as an interactions frame (for leakage-free graph evidence)."""
    rows = [(u, i) for u, seq in zip(split.train.user_ids, split.train.sequences) for i in seq]
    return pd.DataFrame(rows, columns=["user_id", "item_id"])


def identify_roles(dataset: Dataset, tags_dir: str | Path, *, test_share: float = 0.2, seed: int = 0, llm_weight: float = 0.5,
                   model_scores: np.ndarray | None = None, model_roles: list[str] | None = None) -> list[dict[str, Any]]:
    """Role identification table on held-out users: graph naive Bayes vs majority and
    topic-frequency baselines (and the TagCF model when its role scores are passed)."""
    labels = user_role_labels(dataset)
    train_u, test_u = split_users(labels["user_id"].to_numpy(), test_share, seed)
    seqs = dataset.sequences()
    item_tags = load_item_tags(tags_dir)
    topics, roles = TagVocabulary.load(Path(tags_dir) / "topics.json"), TagVocabulary.load(Path(tags_dir) / "roles.json")
    mt, _ = tag_matrices(item_tags, dataset.n_items, topics.names, roles.names)
    lab = labels.set_index("user_id")
    train_roles = lab.loc[train_u].reset_index()
    test_roles = lab.loc[test_u].reset_index()
    train_hist = [seqs[u] for u in train_u]
    test_hist = [seqs[u] for u in test_u]
    graph_scores = {}
    for name, w in (("graph (LLM+behaviour)", llm_weight), ("graph (behaviour only)", 0.0)):
        graph = build_role_graph(dataset, tags_dir, train_users=train_u, llm_weight=w)
        tau = fit_temperature(train_hist, mt, graph, train_roles)
        graph_scores[name] = graph_role_scores(test_hist, mt, graph, train_roles, temperature=tau)
    rows = []
    for group in [c for c in labels.columns if c != "user_id"]:
        truth = test_roles[group].tolist()
        allowed = sorted(labels[group].unique())
        preds = {
            "majority": majority_prediction(train_roles, group, len(test_u)),
            "topic-frequency": topic_frequency_prediction(train_hist, train_roles, test_hist, mt, group),
            **{name: ranked_from_scores(sc, roles.names, allowed) for name, sc in graph_scores.items()},
        }
        if model_scores is not None and model_roles is not None:
            preds["tagcf model"] = ranked_from_scores(model_scores[test_u], model_roles, allowed)
        for method, ranked in preds.items():
            rows.append({"dataset": dataset.name, "group": group, "method": method, "classes": len(allowed), **role_metrics(truth, ranked)})
    return rows


def export_features(dataset: Dataset, tags_dir: str | Path, graph_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """item_features.parquet and user_features.parquet (named float columns) for downstream models."""
    graph = RoleGraph.load(graph_dir)
    item_tags = load_item_tags(tags_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    im, inames = item_features(item_tags, dataset.n_items, graph)
    features_frame(np.arange(dataset.n_items), im, inames, "item_id").to_parquet(out / "item_features.parquet", index=False)
    um, unames = user_features(dataset.sequences(), item_tags, dataset.n_items, graph)
    features_frame(np.arange(dataset.n_users), um, unames, "user_id").to_parquet(out / "user_features.parquet", index=False)
    meta = {"item_features": list(im.shape), "user_features": list(um.shape), "graph": str(graph_dir), "tags": str(tags_dir)}
    (out / "features.json").write_text(json.dumps(meta, indent=2))
    return meta


def tagcf_model_inputs(dataset: Dataset, split, tags_dir: str | Path, *, llm_weight: float = 0.5) -> dict[str, np.ndarray]:
    """item_tags + logic for `TagCFRecommender` and graph item features for any model's side-info
    hook, with behavioural graph evidence from the split's training part only."""
    tags = load_item_tags(tags_dir)
    roles = TagVocabulary.load(Path(tags_dir) / "roles.json")
    if not len(roles):  # no profiles and no LLM roles: topics only, no logic (say so in results)
        topics = TagVocabulary.load(Path(tags_dir) / "topics.json")
        mt, _ = tag_matrices(tags, dataset.n_items, topics.names, [])
        return {"item_tags": mt, "logic": np.zeros((mt.shape[1], mt.shape[1]), np.float32), "side_features": mt}
    graph = build_role_graph(dataset, tags_dir, interactions=split_interactions(dataset, split), llm_weight=llm_weight)
    item_tags, logic = tagcf_inputs(tags, dataset.n_items, graph)
    feats, _ = item_features(tags, dataset.n_items, graph)
    return {"item_tags": item_tags, "logic": logic, "side_features": feats}
