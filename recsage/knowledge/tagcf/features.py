"""Graph-derived feature vectors for items and users: what any recommender's side-info hook eats,
and what pipelines export to Parquet for downstream models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsage.knowledge.tagcf.graph import RoleGraph


def tag_matrices(item_tags: pd.DataFrame, n_items: int, topics: Sequence[str], roles: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n_items, n_topics) and (n_items, n_roles) 0/1 matrices; unknown tags are ignored here
    (the graph counts them as rejections)."""
    t_idx = {t: i for i, t in enumerate(topics)}
    r_idx = {r: i for i, r in enumerate(roles)}
    mt = np.zeros((n_items, len(topics)), dtype=np.float32)
    mr = np.zeros((n_items, len(roles)), dtype=np.float32)
    for iid, tps, rls in item_tags[["item_id", "topics", "roles"]].itertuples(index=False):
        if 0 <= int(iid) < n_items:
            for t in tps if tps is not None else []:
                if t in t_idx:
                    mt[int(iid), t_idx[t]] = 1
            for r in rls if rls is not None else []:
                if r in r_idx:
                    mr[int(iid), r_idx[r]] = 1
    return mt, mr


def logic_matrix(graph: RoleGraph) -> np.ndarray:
    """Block tag×tag matrix over [topics, roles]: topic→role and role→topic weights (a two-hop
    walk topic→role→topic is `L @ L`)."""
    nt, nr = len(graph.topics), len(graph.roles)
    m = np.zeros((nt + nr, nt + nr), dtype=np.float32)
    m[:nt, nt:] = graph.topic_to_role
    m[nt:, :nt] = graph.role_to_topic
    return m


def item_features(item_tags: pd.DataFrame, n_items: int, graph: RoleGraph) -> tuple[np.ndarray, list[str]]:
    """[topics | LLM roles | roles implied by the item's topics through the graph], with names."""
    mt, mr = tag_matrices(item_tags, n_items, graph.topics, graph.roles)
    implied = mt @ graph.topic_to_role
    implied /= np.maximum(implied.sum(axis=1, keepdims=True), 1e-12)
    names = [f"topic:{t}" for t in graph.topics] + [f"role:{r}" for r in graph.roles] + [f"graph_role:{r}" for r in graph.roles]
    return np.concatenate([mt, mr, implied], axis=1).astype(np.float32), names


def user_topic_counts(histories: Sequence[np.ndarray], item_topic: np.ndarray) -> np.ndarray:
    out = np.zeros((len(histories), item_topic.shape[1]), dtype=np.float64)
    for u, h in enumerate(histories):
        if len(h):
            out[u] = item_topic[np.asarray(h)].sum(axis=0)
    return out


def user_features(histories: Sequence[np.ndarray], item_tags: pd.DataFrame, n_items: int, graph: RoleGraph) -> tuple[np.ndarray, list[str]]:
    """[topic profile (shares) | graph role scores] for each history."""
    mt, _ = tag_matrices(item_tags, n_items, graph.topics, graph.roles)
    counts = user_topic_counts(histories, mt)
    profile = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
    roles = profile @ graph.topic_to_role
    names = [f"topic_share:{t}" for t in graph.topics] + [f"graph_role:{r}" for r in graph.roles]
    return np.concatenate([profile, roles], axis=1).astype(np.float32), names


def features_frame(ids: np.ndarray, matrix: np.ndarray, names: list[str], id_column: str) -> pd.DataFrame:
    """Named float columns for Parquet export (one row per item/user)."""
    df = pd.DataFrame(matrix, columns=names)
    df.insert(0, id_column, np.asarray(ids, dtype=np.int64))
    return df
