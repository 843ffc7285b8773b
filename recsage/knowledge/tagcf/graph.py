"""The role↔topic logic graph: LLM co-assignment and behavioural evidence on every edge.

Nodes are `role:<name>` and `topic:<name>` (a role and a topic may share a name without becoming
a self-loop). Edge weights are conditional probabilities — role→topic is P(topic | role),
topic→role is P(role | topic) — mixed from two evidence sources, each kept on the edge:
- `llm`: the LLM tagged an item with both the role and the topic (its judgement of relatedness);
- `behaviour`: users who hold the role interacted with items that have the topic.

An analyst needs to know which edges to believe, so every edge also carries, per source, its
*lift* (how much likelier the topic is for this role than overall) with a 95% Wilson interval,
and its *support* (distinct users and items behind it; items the LLM tagged with both). The
edge's `evidence` is "behaviour" when enough users back it, else "llm" when enough LLM-tagged
items do, else "below floor"; its `strength` is that source's lift lower bound. Edges backed by
users rank before edges backed only by LLM votes: the two lifts are not on one scale (the LLM
names roles *from* the genre, so its lifts run 3–15 where behaviour lifts run .5–1.5), and with
the larger of the two as strength, single-digit LLM votes ("homemaker → space adventure", 3 items,
0 users) topped the ML-100K graph. Edges below every floor are kept (`above_floor` False) but
hidden by default. The behaviour
interval counts interactions, which are not independent draws, so it is narrower than it should
be: the user-support floor, not the interval, is what guards against a few heavy users.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError

ROLE, TOPIC = "role", "topic"


def node(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score interval of a proportion, elementwise (0, 0 where there are no trials)."""
    n = np.maximum(np.asarray(trials, dtype=np.float64), 1e-12)
    p = np.asarray(successes, dtype=np.float64) / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    has = np.asarray(trials) > 0
    return np.where(has, np.clip(centre - half, 0, 1), 0.0), np.where(has, np.clip(centre + half, 0, 1), 0.0)


def lift_with_interval(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lift P(col | row) / P(col) of a (rows, cols) count matrix, and its interval from the
    Wilson interval of P(col | row)."""
    row_tot = counts.sum(axis=1, keepdims=True)
    base = counts.sum(axis=0, keepdims=True) / max(counts.sum(), 1e-12)
    lo, hi = wilson_interval(counts, np.broadcast_to(row_tot, counts.shape))
    safe = np.where(base > 0, base, 1.0)
    p = counts / np.maximum(row_tot, 1e-12)
    ok = (base > 0) & (row_tot > 0)
    return np.where(ok, p / safe, 0.0), np.where(ok, lo / safe, 0.0), np.where(ok, hi / safe, 0.0)


EDGE_COLUMNS = ["source", "target", "evidence", "strength", "above_floor", "weight", "lift", "lift_low", "lift_high", "support_users", "support_items",
                "behaviour_count", "llm_lift", "llm_lift_low", "llm_count"]


@dataclass
class GraphRejections:
    """Counted, not silently dropped: evidence that could not become an edge."""

    unknown_role: int = 0
    unknown_topic: int = 0
    self_loops: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, what: str, detail: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        if len(self.examples) < 20:
            self.examples.append(f"{what}: {detail}")

    def to_dict(self) -> dict[str, Any]:
        return {"unknown_role": self.unknown_role, "unknown_topic": self.unknown_topic, "self_loops": self.self_loops, "examples": self.examples}


@dataclass
class RoleGraph:
    """A networkx DiGraph plus the dense matrices models consume (`role_to_topic`, `topic_to_role`)."""

    roles: list[str]
    topics: list[str]
    graph: nx.DiGraph
    rejections: GraphRejections = field(default_factory=GraphRejections)

    # ---- building ----
    @classmethod
    def build(
        cls,
        roles: list[str],
        topics: list[str],
        item_tags: pd.DataFrame,
        interactions: pd.DataFrame | None = None,
        user_roles: pd.DataFrame | None = None,
        *,
        llm_weight: float = 0.5,
        min_count: int = 1,
        n_examples: int = 3,
        min_support_users: int = 5,
        min_llm_items: int = 3,
    ) -> RoleGraph:
        """`item_tags`: item_id, topics, roles (LLM roles). `user_roles`: user_id + one column per
        role group (profile labels; pass only training users when evaluating role identification).
        Support floors: behaviour evidence counts from `min_support_users` distinct users, LLM
        evidence from `min_llm_items` items tagged with both the role and the topic."""
        if not roles or not topics:
            raise InvalidInputError("the role graph needs at least one role and one topic", field="vocabulary")
        if not 0 <= llm_weight <= 1:
            raise InvalidInputError(f"llm_weight must be in [0, 1], got {llm_weight}", field="llm_weight")
        r_idx = {r: i for i, r in enumerate(roles)}
        t_idx = {t: i for i, t in enumerate(topics)}
        rej = GraphRejections()
        n_r, n_t = len(roles), len(topics)
        item_topics: dict[int, list[int]] = {}
        llm_counts = np.zeros((n_r, n_t))
        llm_items: dict[tuple[int, int], list[int]] = defaultdict(list)
        for iid, tps, rls in item_tags[["item_id", "topics", "roles"]].itertuples(index=False):
            ti = []
            for t in list(tps) if tps is not None else []:
                if t in t_idx:
                    ti.append(t_idx[t])
                else:
                    rej.add("unknown_topic", f"item {iid}: {t!r}")
            item_topics[int(iid)] = ti
            for r in list(rls) if rls is not None else []:
                if r not in r_idx:
                    rej.add("unknown_role", f"item {iid}: {r!r}")
                    continue
                for t in ti:
                    llm_counts[r_idx[r], t] += 1
                    if len(llm_items[(r_idx[r], t)]) < n_examples:
                        llm_items[(r_idx[r], t)].append(int(iid))
        beh_counts = np.zeros((n_r, n_t))
        beh_users: dict[tuple[int, int], list[int]] = defaultdict(list)
        beh_items: dict[tuple[int, int], defaultdict] = defaultdict(lambda: defaultdict(int))
        beh_user_sets: dict[tuple[int, int], set[int]] = defaultdict(set)
        if interactions is not None and user_roles is not None and len(user_roles):
            groups = [c for c in user_roles.columns if c != "user_id"]
            roles_of = {int(u): [r_idx[v] for v in vals if v in r_idx] for u, *vals in user_roles[["user_id", *groups]].itertuples(index=False)}
            for g in groups:
                for v in user_roles[g].unique():
                    if v not in r_idx:
                        rej.add("unknown_role", f"user profile {g}={v!r}")
            inter = interactions[interactions["user_id"].isin(list(roles_of))]
            for uid, iid in inter[["user_id", "item_id"]].itertuples(index=False):
                for t in item_topics.get(int(iid), ()):
                    for r in roles_of[int(uid)]:
                        beh_counts[r, t] += 1
                        beh_user_sets[(r, t)].add(int(uid))
                        if len(beh_users[(r, t)]) < n_examples and int(uid) not in beh_users[(r, t)]:
                            beh_users[(r, t)].append(int(uid))
                        beh_items[(r, t)][int(iid)] += 1
        g = nx.DiGraph(name="tagcf-role-graph")
        for r in roles:
            g.add_node(node(ROLE, r), kind=ROLE, name=r)
        for t in topics:
            g.add_node(node(TOPIC, t), kind=TOPIC, name=t)

        def mix(counts_llm: np.ndarray, counts_beh: np.ndarray) -> np.ndarray:
            """Per source row: each evidence source as P(dst | src), averaged with its weight
            over the sources that have any evidence for that row (rows stay distributions)."""
            num = np.zeros_like(counts_llm, dtype=np.float64)
            den = np.zeros((counts_llm.shape[0], 1))
            for c, w in ((counts_llm, llm_weight), (counts_beh, 1 - llm_weight)):
                tot = c.sum(axis=1, keepdims=True)
                has = (tot > 0) & (w > 0)
                num += np.where(has, w * c / np.maximum(tot, 1e-12), 0.0)
                den += np.where(has, w, 0.0)
            return num / np.maximum(den, 1e-12)

        r2t = mix(llm_counts, beh_counts)
        t2r = mix(llm_counts.T, beh_counts.T)
        lift, lift_lo, lift_hi = lift_with_interval(beh_counts)
        llm_lift, llm_lo, _ = lift_with_interval(llm_counts)
        for ri, ti in zip(*np.nonzero((llm_counts + beh_counts) >= min_count)):
            a, b = node(ROLE, roles[ri]), node(TOPIC, topics[ti])
            if a == b:
                rej.add("self_loops", a)
                continue
            top_items = sorted(beh_items[(ri, ti)].items(), key=lambda kv: (-kv[1], kv[0]))[:n_examples] if (ri, ti) in beh_items else []
            support_users = len(beh_user_sets.get((ri, ti), ()))
            beh_ok = support_users >= min_support_users
            llm_ok = llm_weight > 0 and llm_counts[ri, ti] >= min_llm_items  # a behaviour-only graph ranks by behaviour alone
            strength = float(lift_lo[ri, ti]) if beh_ok else float(llm_lo[ri, ti]) if llm_ok else 0.0
            evidence = {
                "llm_count": int(llm_counts[ri, ti]),
                "behaviour_count": int(beh_counts[ri, ti]),
                "lift": float(lift[ri, ti]), "lift_low": float(lift_lo[ri, ti]), "lift_high": float(lift_hi[ri, ti]),
                "support_users": support_users, "support_items": len(beh_items.get((ri, ti), ())),
                "llm_lift": float(llm_lift[ri, ti]), "llm_lift_low": float(llm_lo[ri, ti]),
                "strength": strength, "above_floor": bool(beh_ok or llm_ok), "behaviour_floor": bool(beh_ok), "llm_floor": bool(llm_ok),
                "evidence": "behaviour" if beh_ok else "llm" if llm_ok else "below floor",
                "example_items": llm_items.get((ri, ti), []) or [i for i, _ in top_items],
                "example_users": beh_users.get((ri, ti), []),
            }
            g.add_edge(a, b, weight=float(r2t[ri, ti]), relation="role_to_topic", **evidence)
            g.add_edge(b, a, weight=float(t2r[ti, ri]), relation="topic_to_role", **evidence)
        g.graph.update(llm_weight=llm_weight, min_support_users=min_support_users, min_llm_items=min_llm_items)
        return cls(list(roles), list(topics), g, rej)

    # ---- matrices ----
    def _matrix(self, relation: str) -> np.ndarray:
        src, dst = (self.roles, self.topics) if relation == "role_to_topic" else (self.topics, self.roles)
        sk, dk = (ROLE, TOPIC) if relation == "role_to_topic" else (TOPIC, ROLE)
        m = np.zeros((len(src), len(dst)), dtype=np.float32)
        d_idx = {n: i for i, n in enumerate(dst)}
        for i, s in enumerate(src):
            for _, v, w in self.graph.out_edges(node(sk, s), data="weight"):
                m[i, d_idx[self.graph.nodes[v]["name"]]] = w
        return m

    @property
    def role_to_topic(self) -> np.ndarray:
        return self._matrix("role_to_topic")

    @property
    def topic_to_role(self) -> np.ndarray:
        return self._matrix("topic_to_role")

    def require_edges(self) -> None:
        if self.graph.number_of_edges() == 0:
            raise InvalidInputError("the role graph has no edges: no item has both tags and behaviour/LLM roles", field="graph")

    # ---- reading ----
    def edge_table(self, relation: str = "role_to_topic") -> pd.DataFrame:
        """Every edge of one direction with its statistics (EDGE_COLUMNS + examples); graphs saved
        before the statistics existed read as strength 0, below the floor."""
        defaults = {"evidence": "below floor", "strength": 0.0, "above_floor": False, "lift_low": 0.0, "lift_high": 0.0, "support_users": 0, "support_items": 0,
                    "llm_lift": 0.0, "llm_lift_low": 0.0}
        rows = [{"source": self.graph.nodes[u]["name"], "target": self.graph.nodes[v]["name"],
                 **{k: d.get(k, defaults.get(k)) for k in EDGE_COLUMNS[2:]},
                 "example_items": list(d.get("example_items", [])), "example_users": list(d.get("example_users", []))}
                for u, v, d in self.graph.edges(data=True) if d["relation"] == relation]
        return pd.DataFrame(rows, columns=EDGE_COLUMNS + ["example_items", "example_users"])

    def top_edges(self, relation: str = "role_to_topic", n: int = 10, by: str = "strength", include_hidden: bool = False,
                  source: str | None = None) -> pd.DataFrame:
        """The strongest edges, evidence first: edges backed by users, then those backed only by LLM
        votes, each by `strength` (the conservative lift); only edges above their support floor
        unless `include_hidden`; only those out of `source` if given."""
        df = self.edge_table(relation)
        if not include_hidden:
            df = df[df["above_floor"].astype(bool)]
        if source is not None:
            df = df[df["source"] == source]
        order = df.assign(_users=df["evidence"] == "behaviour").sort_values(["_users", by, "weight"], ascending=False)  # user evidence first
        return order.head(n).drop(columns=["example_users", "_users"]).reset_index(drop=True)

    def role_profile(self, role: str, n: int = 10, include_hidden: bool = False) -> pd.DataFrame:
        """A role's strongest topics with lift, interval, support and example items."""
        if role not in self.roles:
            raise InvalidInputError(f"unknown role {role!r}", field="role")
        return self.top_edges("role_to_topic", n=n, include_hidden=include_hidden, source=role)

    def stats(self) -> dict[str, Any]:
        g = self.graph
        w = np.array([d["weight"] for _, _, d in g.edges(data=True)]) if g.number_of_edges() else np.zeros(1)
        deg = [d for _, d in g.out_degree()]
        return {
            "roles": len(self.roles), "topics": len(self.topics), "nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
            "density": round(nx.density(g), 4), "isolated_nodes": nx.number_of_isolates(g),
            "mean_out_degree": round(float(np.mean(deg)), 2) if deg else 0.0,
            "weight_p50": round(float(np.quantile(w, 0.5)), 4), "weight_p90": round(float(np.quantile(w, 0.9)), 4),
            "edges_with_llm_evidence": sum(1 for *_, d in g.edges(data=True) if d["llm_count"] > 0),
            "edges_with_behaviour_evidence": sum(1 for *_, d in g.edges(data=True) if d["behaviour_count"] > 0),
            "role_topic_edges": sum(1 for *_, d in g.edges(data=True) if d["relation"] == "role_to_topic"),
            "role_topic_edges_above_floor": sum(1 for *_, d in g.edges(data=True) if d["relation"] == "role_to_topic" and d.get("above_floor")),
            # each floor as decided when the edge was built (graphs saved before these flags count 0)
            "above_floor_by_behaviour": sum(1 for *_, d in g.edges(data=True) if d["relation"] == "role_to_topic" and d.get("behaviour_floor")),
            "above_floor_by_llm": sum(1 for *_, d in g.edges(data=True) if d["relation"] == "role_to_topic" and d.get("llm_floor")),
            "support_floor": {"users": g.graph.get("min_support_users"), "llm_items": g.graph.get("min_llm_items")},
            "rejections": self.rejections.to_dict(),
        }

    # ---- persistence ----
    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "role_graph.json").write_text(json.dumps({"roles": self.roles, "topics": self.topics, "rejections": self.rejections.to_dict(),
                                                       "graph": nx.node_link_data(self.graph, edges="edges")}, default=str))
        gm = self.graph.copy()
        for _, _, data in gm.edges(data=True):  # GraphML has no list type
            for k in ("example_items", "example_users"):
                data[k] = json.dumps(data[k])
        nx.write_graphml(gm, d / "role_graph.graphml")
        np.savez(d / "role_graph_matrices.npz", role_to_topic=self.role_to_topic, topic_to_role=self.topic_to_role,
                 roles=np.array(self.roles, dtype=object).astype(str), topics=np.array(self.topics, dtype=object).astype(str))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> RoleGraph:
        path = Path(directory) / "role_graph.json"
        try:
            body = json.loads(path.read_text())
            g = nx.node_link_graph(body["graph"], directed=True, edges="edges")
        except (OSError, json.JSONDecodeError, KeyError) as e:
            raise InvalidInputError(f"not a saved role graph ({e})", file=str(path)) from e
        rej = GraphRejections(**{k: v for k, v in body.get("rejections", {}).items()})
        return cls(body["roles"], body["topics"], g, rej)
