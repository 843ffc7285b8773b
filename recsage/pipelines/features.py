"""Feature tables from whatever signals exist for a prepared dataset, and their Feast repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset, Split
from recsage.features.signals import ItemSignals
from recsage.features.tables import (
    Signals, TrainingView, build_tables, dataset_fingerprint, load_tables, read_manifest, save_tables, training_popularity,
)
from recsage.pipelines.data import load_split



def training_view(dataset: Dataset, split: Split) -> TrainingView:
    """The split's training sequences plus, for data with real times, each user's last training time."""
    last = None
    if dataset.meta.get("timestamp_kind") == "unix" and dataset.interactions is not None:
        inter = dataset.interactions
        starts = inter.groupby("user_id", sort=False).cumcount().to_numpy()
        pos = {(int(u), int(p)): int(t) for u, p, t in zip(inter["user_id"], starts, inter["timestamp"])}
        last = np.array([pos[(int(u), len(s) - 1)] for u, s in zip(split.train.user_ids, split.train.sequences)], dtype=np.int64)
    return TrainingView(split.train.user_ids, split.train.sequences, split.n_items, last)


def has_item_text(dataset: Dataset) -> bool:
    """True when items carry text beyond their ids (Beauty here has ids only)."""
    items = dataset.items
    if items is None or not len(items):
        return False
    titles = items["title"].fillna("").astype(str)
    return bool((titles.str.strip() != "").mean() > 0.5 and (titles != items["raw_id"].astype(str)).mean() > 0.5)


def gather_signals(dataset: Dataset, split: Split, *, sid: str | Path | None = None, tags: str | Path | None = None,
                   reward: str | Path | None = None, lcu: str | Path | None = None, cot: str | Path | None = None, text: bool | None = None,
                   embedder=None) -> tuple[Signals, dict[str, str]]:
    """Collects each signal from the component that produces it; returns (signals, why-absent)."""
    sig, absent = Signals(), {}
    if sid:
        from recsage.pipelines.train import resolve_sid

        table = resolve_sid(dataset, str(sid))
        sig.sid_codes = table.codes
        sig.sid_meta = {"source": str(sid), **{k: v for k, v in table.meta.items() if isinstance(v, (str, int, float))}}
    else:
        absent["sid"] = "no --sid codebook given"
    use_text = has_item_text(dataset) if text is None else text
    if use_text:
        from recsage.llm import Embedder
        from recsage.pipelines.sid import embed_items

        emb = embedder or Embedder()
        sig.text_embedding = embed_items(dataset, emb)
        sig.text_meta = {"model": getattr(emb, "model_name", "all-MiniLM-L6-v2")}
    else:
        absent["text"] = "the dataset's items have no text" if text is None else "text embeddings turned off"
    if tags:
        _tagcf_signals(dataset, split, Path(tags), sig)
    else:
        absent["tagcf"] = "no --tags folder given"
    if reward:
        from recsage.generation.pushgen.reward import load_reward_model

        model = load_reward_model(reward)
        titles = dataset.items["title"].fillna("").astype(str).tolist()
        sig.reward_scores = np.asarray(model.score(titles), dtype=np.float64)
        meta = json.loads((Path(reward) / "config.json").read_text())
        sig.reward_meta = {"model": meta.get("class"), "source": str(reward)}
    else:
        absent["reward"] = "no --reward model given"
    if lcu:
        _lcu_signals(dataset, split, Path(lcu), sig)
    else:
        absent["lcu"] = "no --lcu folder given"
    if cot:
        _cot_signals(dataset, split, Path(cot), sig)
    else:
        absent["cot"] = "no --cot folder given"
    return sig, absent


def _cot_signals(dataset: Dataset, split: Split, cot_dir: Path, sig: Signals) -> None:
    """OneReason chains of each user's *training* sequence with the history-only deduction (the
    folder's settings; the chains are re-derived so no target and no later item enters)."""
    import pandas as pd

    from recsage.generation.onereason.chains import ChainConfig, derive_chains
    from recsage.generation.onereason.verify import deduction_claim
    from recsage.pipelines.onereason import chain_folder_vocab

    meta_path = cot_dir / "meta.json"
    if not meta_path.exists():
        raise InvalidInputError("no meta.json: not a chain folder from `recsage onereason build-cot`", file=str(cot_dir))
    meta = json.loads(meta_path.read_text())
    vocab = chain_folder_vocab(dataset, meta)
    chains, rejected = derive_chains(split.train.sequences, vocab, ChainConfig(n_interests=int(meta.get("n_interests", 3)), min_history=1),
                                     user_ids=split.train.user_ids, with_target=False)
    sig.cot_users = pd.DataFrame({"user_id": [c.user_id for c in chains],
                                  "cot_interests": [[i.name for i in c.interests] for c in chains],
                                  "cot_interest_counts": [[i.count for i in c.interests] for c in chains],
                                  "cot_dynamics": [[i.dynamics for i in c.interests] for c in chains],
                                  "cot_next_interest": [deduction_claim(c) for c in chains]}).set_index("user_id")
    sig.cot_meta = {"chain_version": meta.get("version"), "interest_key": meta.get("interest_key"), "vocabulary_version": meta.get("version"),
                    "llm_model": None, "note": "derived from data (no LLM in these columns); deduction by the history-only rule",
                    "rejected": dict(rejected), "source": str(cot_dir)}


def _lcu_signals(dataset: Dataset, split: Split, lcu_dir: Path, sig: Signals) -> None:
    """Comment-section aggregates of the student's labels, from comments created up to the end of
    the training split (a later comment is the future for this split)."""
    import pandas as pd

    from recsage.knowledge.lcu.aggregates import COLUMNS, thread_aggregates

    path = lcu_dir / "comment_labels.parquet"
    if not path.exists():
        raise InvalidInputError("no LCU comment labels here: run `recsage lcu annotate` and `recsage lcu distill` first", file=str(path))
    if dataset.comments is None:
        raise InvalidInputError(f"dataset {dataset.name!r} has no comments: LCU features need data prepared from the same comment threads", field="lcu")
    labels = pd.read_parquet(path)
    com = dataset.comments.assign(comment_id=dataset.comments["comment_id"].astype(str)).set_index("comment_id")
    labels = labels[labels["comment_id"].astype(str).isin(com.index)].copy()
    if not len(labels):
        raise InvalidInputError(f"none of the labelled comments belong to dataset {dataset.name!r}", file=str(path))
    labelled = com.loc[labels["comment_id"].astype(str)]
    labels["item_id"] = labelled["item_id"].to_numpy()
    train = training_view(dataset, split)
    cutoff = int(train.last_timestamp.max()) if train.last_timestamp is not None and len(train.last_timestamp) else None
    sig.lcu_items = thread_aggregates(labels, labelled["created"].to_numpy(), cutoff=cutoff)
    sig.lcu_columns = dict(COLUMNS)
    teacher = lcu_dir / "teacher" / "meta.json"
    tmeta = json.loads(teacher.read_text()) if teacher.exists() else {}
    distill = json.loads((lcu_dir / "distill.json").read_text()) if (lcu_dir / "distill.json").exists() else {}
    sig.lcu_meta = {"llm_model": tmeta.get("model"), "prompt_version": tmeta.get("prompt"), "vocabulary_version": tmeta.get("layout"),
                    "teacher_labels": distill.get("teacher_labels"), "labelled_by": "MiniLM student distilled from the LLM teacher",
                    "cutoff_unix": cutoff, "source": str(lcu_dir)}


def _tagcf_signals(dataset: Dataset, split: Split, tags_dir: Path, sig: Signals) -> None:
    from recsage.knowledge.tagcf.vocab import TagVocabulary
    from recsage.pipelines.tagcf import build_role_graph, load_item_tags, split_interactions, user_role_labels

    tags = load_item_tags(tags_dir).set_index("item_id")
    topics = TagVocabulary.load(tags_dir / "topics.json")
    roles = TagVocabulary.load(tags_dir / "roles.json")
    sig.item_topics = [list(tags.at[i, "topics"]) if i in tags.index else [] for i in range(dataset.n_items)]
    sig.item_roles = [list(tags.at[i, "roles"]) if i in tags.index else [] for i in range(dataset.n_items)]
    sig.topic_names, sig.role_names = list(topics.names), list(roles.names)
    meta_path = tags_dir / "item_tags.json"
    tag_meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    sig.tagcf_meta = {"llm_model": tag_meta.get("model"), "prompt_version": tag_meta.get("prompt_version"),
                      "topics_version": topics.version, "roles_version": roles.version,
                      "items_tagged_by_llm": tag_meta.get("items_tagged_by_llm", 0)}
    if len(roles):
        # behavioural graph evidence from the training split only
        graph = build_role_graph(dataset, tags_dir, interactions=split_interactions(dataset, split))
        sig.topic_to_role, sig.role_to_topic = graph.topic_to_role, graph.role_to_topic
        sig.topic_names, sig.role_names = list(graph.topics), list(graph.roles)
        if dataset.users is not None and len(dataset.users) and any(c in dataset.users for c in ("occupation", "age_band", "gender")):
            labels = user_role_labels(dataset).set_index("user_id")
            sig.user_profile_roles = {int(u): [str(v) for v in row.values] for u, row in labels.iterrows()}


def build_features(prepared: str | Path, out: str | Path, *, protocol: str = "loo", sid: str | Path | None = None, tags: str | Path | None = None,
                   reward: str | Path | None = None, lcu: str | Path | None = None, cot: str | Path | None = None, text: bool | None = None,
                   embedder=None) -> dict[str, Any]:
    """`recsage features build`: items.parquet, users.parquet and manifest.json under `out`."""
    dataset, split = load_split(prepared, protocol)
    sig, absent = gather_signals(dataset, split, sid=sid, tags=tags, reward=reward, lcu=lcu, cot=cot, text=text, embedder=embedder)
    user_keys = dataset.users["raw_id"].astype(str).tolist() if dataset.users is not None else [str(u) for u in range(dataset.n_users)]
    items, users, manifest = build_tables(dataset.items["raw_id"].astype(str).tolist(), user_keys, training_view(dataset, split), sig,
                                          dataset_name=dataset.name, protocol=split.protocol, absent_reasons=absent)
    manifest["source"] = {"prepared": str(prepared), "sid": str(sid) if sid else None, "tags": str(tags) if tags else None,
                          "reward": str(reward) if reward else None, "lcu": str(lcu) if lcu else None,
                          "cot": str(cot) if cot else None}
    save_tables(out, items, users, manifest)
    return manifest


def split_fingerprint(dataset: Dataset, split: Split) -> str:
    return dataset_fingerprint(dataset.items["raw_id"].astype(str).tolist(), training_view(dataset, split))


def item_signals(features: str | Path | None, dataset: Dataset, split: Split) -> ItemSignals:
    """The ranking stage's item signals from a feature folder (checked against this dataset and
    split), or behaviour-only signals from the training split when no folder is given."""
    if features is None:
        pop, recent = training_popularity(split.train.sequences, split.n_items)
        return ItemSignals(split.n_items, pop.astype(np.float64), recent.astype(np.float64))
    items, _, manifest = load_tables(features, expected_fingerprint=split_fingerprint(dataset, split))
    return ItemSignals.from_table(items, manifest, file=Path(features) / "items.parquet")


def feature_summary(features: str | Path) -> dict[str, Any]:
    """What a feature folder holds: rows, groups present/absent, schema (for the CLI and the Features page)."""
    items, users, manifest = load_tables(features)
    return {"dataset": manifest["dataset"], "rows": manifest["rows"], "groups": {g: v.get("component") for g, v in manifest["groups"].items()},
            "absent": manifest["absent"], "schema": manifest["schema"], "items_columns": list(items.columns), "users_columns": list(users.columns)}


def write_feast_repo(features: str | Path, repo: str | Path) -> dict[str, Any]:
    """`recsage features feast-repo`: a Feast repository over a feature folder (checked first)."""
    from recsage.features.feast_repo import write_repository

    load_tables(features)  # refuses a folder that is not readable feature tables, naming the file
    return write_repository(features, repo, read_manifest(features))
