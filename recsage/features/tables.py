"""Versioned item and user feature tables (Parquet + manifest.json) that other systems read.

Point-in-time rule: every value comes from the training part of the split (for `loo`, each
user's s[:-2]); validation and test interactions never reach a table. Signals that were not
given are absent, and the manifest says so, instead of columns full of placeholders.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError

FEATURE_VERSION = "1"
FORMAT_VERSION = 1
OPTIONAL_GROUPS = ("sid", "text", "tagcf", "reward", "lcu", "cot")
KEY_COLUMNS = {"items": ("item_id", "item_key"), "users": ("user_id", "user_key")}


@dataclass
class TrainingView:
    """The training split as the tables see it: per-user sequences and, where the data has real
    times, the timestamp of each user's last training interaction."""

    user_ids: np.ndarray
    sequences: list[np.ndarray]
    n_items: int
    last_timestamp: np.ndarray | None = None  # unix seconds per training user


@dataclass
class Signals:
    """What other components produced, as plain arrays/records (pipelines gather them)."""

    sid_codes: np.ndarray | None = None
    sid_meta: dict[str, Any] = field(default_factory=dict)
    text_embedding: np.ndarray | None = None
    text_meta: dict[str, Any] = field(default_factory=dict)
    item_topics: list[list[str]] | None = None
    item_roles: list[list[str]] | None = None
    topic_names: list[str] | None = None
    role_names: list[str] | None = None
    topic_to_role: np.ndarray | None = None
    role_to_topic: np.ndarray | None = None
    user_profile_roles: dict[int, list[str]] | None = None  # user_id → roles named in their profile
    tagcf_meta: dict[str, Any] = field(default_factory=dict)
    reward_scores: np.ndarray | None = None
    reward_meta: dict[str, Any] = field(default_factory=dict)
    lcu_items: pd.DataFrame | None = None  # index item_id; columns of knowledge.lcu.aggregates.COLUMNS
    lcu_columns: dict[str, tuple[str, str]] = field(default_factory=dict)  # column → (type, meaning)
    lcu_meta: dict[str, Any] = field(default_factory=dict)
    cot_users: pd.DataFrame | None = None  # index user_id; columns of COT_COLUMNS (OneReason chains of the training sequence)
    cot_meta: dict[str, Any] = field(default_factory=dict)


COT_COLUMNS = {
    "cot_interests": ("list<string>", "OneReason induction: the user's interests (catalogue categories), most frequent first"),
    "cot_interest_counts": ("list<int64>", "items of each interest in the training history window"),
    "cot_dynamics": ("list<string>", "OneReason abduction: long-term | rising | periodic | one-off per interest"),
    "cot_next_interest": ("string", "OneReason deduction from the history alone (rule): the interest the next item most likely serves"),
}


def fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(np.ascontiguousarray(p).tobytes() if isinstance(p, np.ndarray) else str(p).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def dataset_fingerprint(item_keys: Sequence[str], train: TrainingView) -> str:
    """Item catalogue + the training interactions: tables from another dataset or split differ."""
    return fingerprint("\n".join(map(str, item_keys)), train.n_items, sum(len(s) for s in train.sequences),
                       np.concatenate(train.sequences) if train.sequences else np.zeros(0, np.int64))


def training_popularity(sequences: Sequence[np.ndarray], n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Interaction counts per item, and counts among each sequence's last 3 items (recency)."""
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
    empty = np.zeros(0, np.int64)
    pop = np.bincount(np.concatenate(seqs) if seqs else empty, minlength=n_items)
    recent = np.bincount(np.concatenate([s[-3:] for s in seqs]) if seqs else empty, minlength=n_items)
    return pop, recent


def _pca(x: np.ndarray, dim: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    dim = min(dim, x.shape[0], x.shape[1])
    return PCA(n_components=dim, random_state=0).fit_transform(x).astype(np.float32)


def build_tables(item_keys: Sequence[str], user_keys: Sequence[str], train: TrainingView, signals: Signals, *,
                 dataset_name: str, protocol: str, pca_dim: int = 32, created: datetime | None = None,
                 absent_reasons: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(items, users, manifest). Item rows cover the whole catalogue; user rows every user with
    a training sequence."""
    created = created or datetime.now(timezone.utc).replace(microsecond=0)
    n = train.n_items
    if len(item_keys) != n:
        raise InvalidInputError(f"{len(item_keys)} item keys for {n} items", field="item_key")
    pop, recent = training_popularity(train.sequences, n)
    unix = train.last_timestamp is not None
    cutoff = pd.Timestamp(int(train.last_timestamp.max()), unit="s", tz="UTC") if unix and len(train.last_timestamp) else pd.Timestamp(created)
    schema: list[dict[str, str]] = []
    groups: dict[str, Any] = {}

    def describe(table: str, column: str, dtype: str, group: str, source: str, meaning: str) -> None:
        schema.append({"table": table, "column": column, "type": dtype, "group": group, "source": source, "meaning": meaning})

    items = pd.DataFrame({"item_id": np.arange(n, dtype=np.int64), "item_key": [str(k) for k in item_keys]})
    items["event_timestamp"] = cutoff
    items["created"] = pd.Timestamp(created)
    items["pop_train"] = pop.astype(np.int64)
    items["pop_train_recent"] = recent.astype(np.int64)
    for c, t, g, s, m in (("item_id", "int64", "key", "recsage", "internal id (0..n_items-1)"),
                          ("item_key", "string", "key", "dataset", "the item's id in the user's own data"),
                          ("event_timestamp", "timestamp", "key", "recsage", "time the values hold from: end of the training split (or build time for order-only data)"),
                          ("created", "timestamp", "key", "recsage", "when the table was built"),
                          ("pop_train", "int64", "behaviour", "training split", "interactions with the item in the training split"),
                          ("pop_train_recent", "int64", "behaviour", "training split", "times it is among a training sequence's last 3 items (recency)")):
        describe("items", c, t, g, s, m)
    groups["behaviour"] = {"component": "recsage.features", "columns": ["pop_train", "pop_train_recent"]}

    if signals.sid_codes is not None:
        codes = np.asarray(signals.sid_codes, dtype=np.int64)
        if codes.shape[0] != n:
            raise InvalidInputError(f"SID codes for {codes.shape[0]} items, dataset has {n}", field="sid")
        cols = []
        for lv in range(codes.shape[1]):
            items[f"sid_l{lv + 1}"] = codes[:, lv]
            cols.append(f"sid_l{lv + 1}")
            describe("items", f"sid_l{lv + 1}", "int64", "sid", "recsage.tokenizers", f"semantic-ID code at level {lv + 1}")
        items["sid"] = ["".join(f"<{chr(97 + lv)}_{int(c)}>" for lv, c in enumerate(row)) for row in codes]
        describe("items", "sid", "string", "sid", "recsage.tokenizers", "the semantic ID as tokens")
        groups["sid"] = {"component": "recsage.tokenizers", "columns": cols + ["sid"], "codebook_fingerprint": fingerprint(codes),
                         "n_levels": int(codes.shape[1]), **signals.sid_meta}
    if signals.text_embedding is not None:
        e = np.asarray(signals.text_embedding, dtype=np.float32)
        if e.shape[0] != n:
            raise InvalidInputError(f"text embeddings for {e.shape[0]} items, dataset has {n}", field="text_embedding")
        items["text_embedding"] = list(e)
        pca = _pca(e, pca_dim)
        for j in range(pca.shape[1]):
            items[f"text_pca_{j:02d}"] = pca[:, j]
        describe("items", "text_embedding", f"list<float32>[{e.shape[1]}]", "text", "MiniLM (recsage.llm.Embedder)", "sentence embedding of title, brand, categories, description")
        describe("items", "text_pca_00..", "float32", "text", "recsage.features", f"PCA-{pca.shape[1]} of the text embedding")
        groups["text"] = {"component": "recsage.llm.Embedder", "columns": ["text_embedding"] + [f"text_pca_{j:02d}" for j in range(pca.shape[1])],
                          "dim": int(e.shape[1]), "pca_dim": int(pca.shape[1]), **signals.text_meta}
    if signals.item_topics is not None and signals.topic_names is not None:
        tidx = {t: i for i, t in enumerate(signals.topic_names)}
        mh = np.zeros((n, len(tidx)), np.float32)
        for i, ts in enumerate(signals.item_topics):
            for t in ts:
                if t in tidx:
                    mh[i, tidx[t]] = 1
        items["topics"] = [list(ts) for ts in signals.item_topics]
        items["roles"] = [list(rs) for rs in (signals.item_roles or [[] for _ in range(n)])]
        items["topic_multihot"] = list(mh)
        cols = ["topics", "roles", "topic_multihot"]
        describe("items", "topics", "list<string>", "tagcf", "recsage.knowledge.tagcf", "topic tags (data-derived and LLM)")
        describe("items", "roles", "list<string>", "tagcf", "recsage.knowledge.tagcf", "user roles the LLM assigned to the item")
        describe("items", "topic_multihot", f"list<float32>[{len(tidx)}]", "tagcf", "recsage.knowledge.tagcf", "topics as multi-hot, order = manifest topic_names")
        g: dict[str, Any] = {"component": "recsage.knowledge.tagcf", "columns": cols, "topic_names": list(signals.topic_names),
                             "role_names": list(signals.role_names or []), **signals.tagcf_meta}
        if signals.topic_to_role is not None and signals.role_to_topic is not None:
            implied = mh @ signals.topic_to_role
            implied = implied / np.maximum(implied.sum(axis=1, keepdims=True), 1e-12)
            items["graph_role_scores"] = list(implied.astype(np.float32))
            cols.append("graph_role_scores")
            describe("items", "graph_role_scores", f"list<float32>[{implied.shape[1]}]", "tagcf", "recsage.knowledge.tagcf.RoleGraph",
                     "roles implied by the item's topics through the role graph (training interactions only)")
            g["topic_to_role"] = np.asarray(signals.topic_to_role).round(6).tolist()
            g["role_to_topic"] = np.asarray(signals.role_to_topic).round(6).tolist()
        groups["tagcf"] = g
    if signals.reward_scores is not None:
        r = np.asarray(signals.reward_scores, dtype=np.float64)
        if r.shape != (n,):
            raise InvalidInputError(f"reward scores for {r.shape} items, dataset has {n}", field="reward")
        items["reward_title"] = r.astype(np.float32)
        describe("items", "reward_title", "float32", "reward", "recsage.generation.pushgen", "PushGen reward-model score of the item title as push copy")
        groups["reward"] = {"component": "recsage.generation.pushgen", "columns": ["reward_title"], **signals.reward_meta}

    if signals.lcu_items is not None:
        agg = signals.lcu_items.reindex(np.arange(n))
        for c, (t, meaning) in signals.lcu_columns.items():
            if t == "int64":
                items[c] = agg[c].fillna(0).astype(np.int64).to_numpy()
            elif t.startswith("list"):
                items[c] = [list(v) if isinstance(v, (list, np.ndarray)) else [] for v in agg[c]]
            else:
                items[c] = agg[c].astype(np.float32).to_numpy()
            describe("items", c, t, "lcu", "recsage.knowledge.lcu", meaning)
        groups["lcu"] = {"component": "recsage.knowledge.lcu", "columns": list(signals.lcu_columns), **signals.lcu_meta}

    users = _user_table(user_keys, train, signals, items, cutoff, created, describe)
    if signals.cot_users is not None:
        cot = signals.cot_users.reindex(users["user_id"].to_numpy())
        for c, (t, meaning) in COT_COLUMNS.items():
            if t.startswith("list"):
                users[c] = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else [] for v in cot[c]]
            else:
                users[c] = cot[c].fillna("").astype(str).to_numpy()
            describe("users", c, t, "cot", "recsage.generation.onereason", meaning)
        groups["cot"] = {"component": "recsage.generation.onereason", "table": "users", "columns": list(COT_COLUMNS), **signals.cot_meta}
    absent = {g: (absent_reasons or {}).get(g, "not given") for g in OPTIONAL_GROUPS if g not in groups}
    manifest = {
        "format_version": FORMAT_VERSION, "feature_version": FEATURE_VERSION, "dataset": dataset_name, "protocol": protocol,
        "dataset_fingerprint": dataset_fingerprint(item_keys, train), "created": created.isoformat(),
        "point_in_time": "every value is computed from the training part of the split only",
        "tables": {"items": "items.parquet", "users": "users.parquet"}, "rows": {"items": len(items), "users": len(users)},
        "groups": groups, "absent": absent, "schema": schema,
    }
    return items, users, manifest


def _user_table(user_keys, train: TrainingView, signals: Signals, items: pd.DataFrame, cutoff, created, describe) -> pd.DataFrame:
    seqs = [np.asarray(s, dtype=np.int64) for s in train.sequences]
    uid = np.asarray(train.user_ids, dtype=np.int64)
    users = pd.DataFrame({"user_id": uid, "user_key": [str(user_keys[u]) for u in uid]})
    if train.last_timestamp is not None:
        users["event_timestamp"] = pd.to_datetime(np.asarray(train.last_timestamp, dtype=np.int64), unit="s", utc=True)
    else:
        users["event_timestamp"] = cutoff
    users["created"] = pd.Timestamp(created)
    users["n_train_interactions"] = np.array([len(s) for s in seqs], dtype=np.int64)
    users["n_train_unique_items"] = np.array([len(np.unique(s)) for s in seqs], dtype=np.int64)
    for c, t, g, m in (("user_id", "int64", "key", "internal id"), ("user_key", "string", "key", "the user's id in the user's own data"),
                       ("event_timestamp", "timestamp", "key", "the user's last training interaction (or the training cutoff for order-only data)"),
                       ("created", "timestamp", "key", "when the table was built"),
                       ("n_train_interactions", "int64", "behaviour", "interactions in the training split"),
                       ("n_train_unique_items", "int64", "behaviour", "distinct items in the training split")):
        describe("users", c, t, g, "training split" if g == "behaviour" else "recsage", m)
    if "sid_l1" in items.columns:
        l1 = items["sid_l1"].to_numpy()
        k = int(l1.max()) + 1
        users["sid_l1_distribution"] = [(np.bincount(l1[s], minlength=k) / max(len(s), 1)).astype(np.float32) for s in seqs]
        describe("users", "sid_l1_distribution", f"list<float32>[{k}]", "sid", "recsage.tokenizers", "share of the user's training items per level-1 code (interests)")
    if "topic_multihot" in items.columns:
        mh = np.stack(items["topic_multihot"].to_numpy())
        prof = np.stack([mh[s].sum(axis=0) for s in seqs]) if seqs else np.zeros((0, mh.shape[1]), np.float32)
        prof = prof / np.maximum(prof.sum(axis=1, keepdims=True), 1e-12)
        users["topic_distribution"] = list(prof.astype(np.float32))
        describe("users", "topic_distribution", f"list<float32>[{mh.shape[1]}]", "tagcf", "recsage.knowledge.tagcf", "share of the user's training items per topic")
        roles = list(signals.role_names or [])
        if roles and signals.topic_to_role is not None:
            behaviour = prof @ signals.topic_to_role
            behaviour = behaviour / np.maximum(behaviour.sum(axis=1, keepdims=True), 1e-12)
            ridx = {r: i for i, r in enumerate(roles)}
            dist, source = [], []
            for row, u in zip(behaviour, uid):
                named = [r for r in (signals.user_profile_roles or {}).get(int(u), []) if r in ridx]
                if named:
                    v = np.zeros(len(roles), np.float32)
                    v[[ridx[r] for r in named]] = 1.0 / len(named)
                    dist.append(v)
                    source.append("profile")
                else:
                    dist.append(row.astype(np.float32))
                    source.append("behaviour")
            users["role_distribution"] = dist
            users["role_source"] = source
            top = [int(np.argmax(v)) if float(np.max(v, initial=0.0)) > 0 else -1 for v in dist]
            users["top_role"] = [roles[i] if i >= 0 else "" for i in top]
            # a profile states the role; behaviour gives the top role's share of the distribution
            users["role_confidence"] = np.array([1.0 if src == "profile" else (float(v[i]) if i >= 0 else 0.0)
                                                 for v, i, src in zip(dist, top, source)], dtype=np.float32)
            describe("users", "role_distribution", f"list<float32>[{len(roles)}]", "tagcf", "recsage.knowledge.tagcf",
                     "the user's roles: from the profile where known, else identified from training behaviour through the role graph")
            describe("users", "role_source", "string", "tagcf", "recsage.knowledge.tagcf", "'profile' or 'behaviour'")
            describe("users", "top_role", "string", "tagcf", "recsage.knowledge.tagcf", "the most likely role ('' when nothing is known)")
            describe("users", "role_confidence", "float32", "tagcf", "recsage.knowledge.tagcf",
                     "1 for a profile role; else the top role's share of the behaviour-derived distribution")
    return users


# ---------------- reading tables back (checked) ----------------
def save_tables(out: str | Path, items: pd.DataFrame, users: pd.DataFrame, manifest: dict[str, Any]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for df, name in ((items, "items"), (users, "users")):
        table = pa.Table.from_pandas(df, preserve_index=False)
        for i, f in enumerate(table.schema):  # all-empty tag lists would be list<null>: say they hold strings
            if pa.types.is_list(f.type) and pa.types.is_null(f.type.value_type):
                table = table.set_column(i, f.name, table.column(i).cast(pa.list_(pa.string())))
        pq.write_table(table, out / f"{name}.parquet")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return out


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / "manifest.json"
    if not path.exists():
        raise InvalidInputError("not a recsage feature folder (no manifest.json); run `recsage features build`", file=str(Path(directory)))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"manifest.json is not valid JSON ({e})", file=str(path)) from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InvalidInputError(f"format_version {manifest.get('format_version')!r} is not {FORMAT_VERSION}", file=str(path), field="format_version")
    return manifest


def load_tables(directory: str | Path, *, expected_fingerprint: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Items, users and manifest; refuses tables of another dataset/split (fingerprint), missing
    key columns and unreadable Parquet, naming the file and column."""
    d = Path(directory)
    manifest = read_manifest(d)
    if expected_fingerprint is not None and manifest.get("dataset_fingerprint") != expected_fingerprint:
        raise InvalidInputError(f"feature tables were built for another dataset or split (fingerprint {manifest.get('dataset_fingerprint')}, "
                                f"this data has {expected_fingerprint}); rebuild with `recsage features build`", file=str(d / "manifest.json"),
                                field="dataset_fingerprint")
    out = []
    for table in ("items", "users"):
        path = d / manifest["tables"][table]
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises several types for missing/corrupt files
            raise InvalidInputError(f"unreadable Parquet table ({type(e).__name__}: {str(e)[:160]})", file=str(path)) from None
        for col in KEY_COLUMNS[table]:
            if col not in df.columns:
                raise InvalidInputError("key column missing", file=str(path), field=col)
        for g in manifest.get("groups", {}).values():
            for col in g.get("columns", []):
                if table == g.get("table", "items") and col not in df.columns:
                    raise InvalidInputError("column listed in manifest.json is missing", file=str(path), field=col)
        out.append(df)
    return out[0], out[1], manifest
