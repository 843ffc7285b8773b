"""Read-only views the workbench (and notebooks) show: plain data in, plain data out."""

from __future__ import annotations

import json
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets import ColumnMapping, Dataset, ValidationReport, load_generic
from recsage.pipelines.data import load_split, prepare_dataset
from recsage.pipelines.recommend import fit_recommender
from recsage.tokenizers import SIDTable

MAX_UPLOAD_BYTES = 20 * 2**20


def ensure_workspace(root: str | Path = ".recsage/workbench", data_dir: str | Path | None = None) -> Path:
    """Prepares the bundled samples once, so a fresh clone shows real content."""
    from recsage.pipelines.demo import bundled_data_dir

    root = Path(root)
    data_dir = Path(data_dir) if data_dir else bundled_data_dir()
    for kind, folder in (("scientific", "scientific-sample"), ("upworthy", "upworthy-sample")):
        if not (root / kind / "dataset.json").exists():
            prepare_dataset(kind, data_dir / folder, root / kind)
    return root


def list_prepared(root: str | Path) -> list[str]:
    root = Path(root)
    return sorted(p.parent.name for p in root.glob("*/dataset.json"))


def dataset_overview(path: str | Path) -> dict[str, Any]:
    ds = Dataset.load(path)
    out: dict[str, Any] = {"summary": ds.summary(), "validation": ds.meta.get("validation", {}), "meta": {k: v for k, v in ds.meta.items() if k != "validation"}}
    if ds.interactions is not None and len(ds.interactions):
        lengths = ds.interactions.groupby("user_id").size()
        out["sequence_lengths"] = lengths.value_counts().sort_index().rename_axis("length").reset_index(name="users")
        pop = ds.interactions["item_id"].value_counts().head(15)
        out["top_items"] = pd.DataFrame({"item_id": pop.index, "interactions": pop.values, "title": ds.items.set_index("item_id").loc[pop.index, "title"].str.slice(0, 80).values})
    if ds.experiments is not None:
        e = ds.experiments
        out["tests"] = e.groupby("test_id").agg(variants=("headline", "size"), impressions=("impressions", "sum"), best_ctr=("ctr", "max")).reset_index().head(200)
    if ds.items is not None:
        out["items_sample"] = ds.items.head(50)[[c for c in ("item_id", "title", "brand", "categories") if c in ds.items]]
    return out


def validate_upload(data: bytes, filename: str, mapping: str | None = None) -> dict[str, Any]:
    """Uploaded interaction file → counts + validation report (rows with problems are skipped and listed)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInputError(f"upload is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB", file=filename)
    suffix = "".join(Path(filename).suffixes[-2:]) or ".csv"
    if not suffix.endswith((".csv", ".jsonl", ".parquet", ".tsv", ".gz")):
        raise InvalidInputError("unsupported file type (csv, tsv, jsonl, parquet)", file=filename)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"upload{suffix}"
        p.write_bytes(data)
        report = ValidationReport(skip_bad=True)
        try:
            ds = load_generic(p, mapping=ColumnMapping.parse(mapping), report=report, name=Path(filename).stem)
        except InvalidInputError as e:  # name the user's file, not the server's temporary copy
            raise InvalidInputError(e.reason.replace(str(p), filename), file=filename if e.file == str(p) else e.file, record=e.record, field=e.field) from None
    validation = json.loads(json.dumps(report.to_dict(), default=str).replace(json.dumps(str(p))[1:-1], filename))
    return {"summary": ds.summary(), "validation": validation}


@lru_cache(maxsize=8)
def _fitted(prepared: str, method: str):
    ds, split = load_split(prepared, "loo")
    return ds, split, fit_recommender(method, split)


@lru_cache(maxsize=8)
def _loaded(model_dir: str):
    from recsage.pipelines.train import load_model

    return load_model(model_dir)


def find_saved_models(n_items: int, *roots: str | Path) -> dict[str, str]:
    """Trained models (folders from `recsage train --out`, the demo, …) under the roots whose item
    count matches the dataset, by display name → folder."""
    out, rankers = {}, []
    for root in roots:
        for cfg in sorted(Path(root).glob("**/config.json"), key=lambda p: len(p.parts)):
            if any(r in cfg.parents for r in rankers):
                continue  # a ranker's own retrievers are listed as part of it
            try:
                meta = json.loads(cfg.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if meta.get("class") == "two-stage":
                rankers.append(cfg.parent)
            if meta.get("class") in ("sasrec", "tagcf", "generative", "thinking", "two-stage") and meta.get("n_items") == n_items:
                out[f"{meta['class']}: {cfg.parent.parent.name}/{cfg.parent.name}"] = str(cfg.parent)
    return out


def ranker_explanation(model_dir: str | Path, prepared: str | Path, user_id: int, k: int = 10) -> dict[str, Any]:
    """The ranker's top-k for a user's leave-one-out test history with "why this item": the
    strongest feature contributions in words, and every group's contribution for a bar plot."""
    from recsage.pipelines.ranking import reasons

    ds, split = load_split(str(prepared), "loo")
    pos = np.flatnonzero(split.test.user_ids == user_id)
    if not len(pos):
        raise InvalidInputError(f"user {user_id} has no test query", field="user_id")
    hist, target = split.test.histories[pos[0]], int(split.test.targets[pos[0]])
    titles = ds.items.set_index("item_id")["title"].astype(str)
    recs = _loaded(str(model_dir)).explain(hist, k)
    rows, bars = [], []
    for r in recs:
        rows.append({"rank": r["rank"], "title": titles.loc[r["item_id"]], "score": round(r["score"], 4), "held-out item": r["item_id"] == target,
                     "why": reasons(r["contributions"])})
        bars += [{"item": f"{r['rank']}. {titles.loc[r['item_id']][:40]}", "group": g, "contribution": v} for g, v in r["groups"].items()]
    return {"table": pd.DataFrame(rows), "contributions": pd.DataFrame(bars)}


def thinking_explanation(model_dir: str | Path, prepared: str | Path, user_id: int, k: int = 10) -> dict[str, Any]:
    """A thinking model's chain for the user's leave-one-out test history: interests with counts
    and dynamics (derived, so checkable), the deduction the model wrote, its wording, its top-k."""
    from recsage.pipelines.onereason import explain_user

    _, split = load_split(str(prepared), "loo")
    pos = np.flatnonzero(split.test.user_ids == user_id)
    if not len(pos):
        raise InvalidInputError(f"user {user_id} has no test query", field="user_id")
    out = explain_user(model_dir, prepared, user_id, k=k, history=split.test.histories[pos[0]])
    out["chain_table"] = pd.DataFrame(out["chain"] or [])
    return out


def find_feature_folders(*roots: str | Path) -> dict[str, str]:
    """Feature folders (`recsage features build`, the demo) by display name → folder."""
    out = {}
    for root in roots:
        for m in sorted(Path(root).glob("**/manifest.json")):
            try:
                meta = json.loads(m.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if "feature_version" in meta and "tables" in meta:
                out[f"{meta.get('dataset')}: {m.parent.parent.name}/{m.parent.name}"] = str(m.parent)
    return out


def feature_overview(folder: str | Path) -> dict[str, Any]:
    """Manifest summary, schema and a preview of both tables (vector columns shown by length)."""
    from recsage.features.tables import load_tables

    items, users, manifest = load_tables(folder)

    def preview(df: pd.DataFrame) -> pd.DataFrame:
        head = df.head(20).copy()
        for c in head.columns:
            if len(head) and isinstance(head[c].iloc[0], (list, np.ndarray)):
                head[c] = [f"[{len(v)} values]" if len(v) > 8 else ", ".join(map(str, v)) for v in head[c]]
        return head

    groups = pd.DataFrame([{"group": g, "component": v.get("component"), "columns": len(v.get("columns", [])),
                            "model / version": v.get("model") or v.get("llm_model") or v.get("topics_version") or v.get("codebook_fingerprint") or ""}
                           for g, v in manifest["groups"].items()]
                          + [{"group": g, "component": "absent", "columns": 0, "model / version": why} for g, why in manifest["absent"].items()])
    return {"manifest": manifest, "groups": groups, "schema": pd.DataFrame(manifest["schema"]), "items": preview(items), "users": preview(users)}


def ranker_group_importance(model_dir: str | Path) -> pd.DataFrame:
    imp = _loaded(str(model_dir)).group_importance()
    return pd.DataFrame({"group": list(imp), "gain share": list(imp.values())})


def user_recommendations(prepared: str | Path, user_id: int, methods: tuple[str, ...] = ("popularity", "itemknn"), k: int = 10,
                         model_dirs: tuple[str, ...] = ()) -> dict[str, Any]:
    """A user's history (titles) and each model's top-k with titles, on the leave-one-out split:
    baselines by name (fitted here) and trained models by folder (loaded)."""
    ds, split = load_split(str(prepared), "loo")
    if not 0 <= user_id < ds.n_users:
        raise InvalidInputError(f"unknown user {user_id} (0..{ds.n_users - 1})", field="user_id")
    pos = np.flatnonzero(split.test.user_ids == user_id)
    hist = split.test.histories[pos[0]] if len(pos) else np.empty(0, dtype=np.int64)
    titles = ds.items.set_index("item_id")["title"]
    out: dict[str, Any] = {"models": {}, "history": pd.DataFrame({"item_id": hist, "title": titles.loc[hist].values}),
                           "held_out": None if not len(pos) else {"item_id": int(split.test.targets[pos[0]]), "title": titles.loc[int(split.test.targets[pos[0]])]}}
    named = [(m, _fitted(str(prepared), m)[2]) for m in methods] + [(d, _loaded(d)) for d in model_dirs]
    target = None if out["held_out"] is None else out["held_out"]["item_id"]
    summary = []
    for name, model in named:
        ids, scores = model.recommend([hist], k=k)
        ids = ids[0][ids[0] >= 0]
        hit = ids == target
        out["models"][name] = pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "hit": np.where(hit, "✓ held out", ""), "item_id": ids,
                                            "title": titles.loc[ids].values, "score": scores[0][: len(ids)]})
        rank = int(np.flatnonzero(hit)[0]) + 1 if hit.any() else None
        # this user's leave-one-out metrics: where the held-out item landed in this model's top-k
        summary.append({"model": name, "held-out rank": rank if rank else f"> {k}", f"hit@{k}": bool(rank),
                        f"ndcg@{k}": round(1 / np.log2(rank + 1), 4) if rank else 0.0})
    out["summary"] = pd.DataFrame(summary)
    return out


def sid_overview(sid_dir: str | Path, prepared: str | Path) -> dict[str, Any]:
    table = SIDTable.load(sid_dir)
    ds = Dataset.load(prepared)
    table.check_items(ds.items["raw_id"].tolist())
    report = json.loads((Path(sid_dir) / "report.json").read_text()) if (Path(sid_dir) / "report.json").exists() else {}
    frame = pd.DataFrame({"item_id": np.arange(table.n_items), "sid": [table.text(i) for i in range(table.n_items)], "title": ds.items["title"].str.slice(0, 80)})
    return {"table": table, "report": report, "frame": frame}


def items_with_prefix(table: SIDTable, prefix: tuple[int, ...]) -> np.ndarray:
    if not prefix:
        return np.arange(table.n_items)
    return np.flatnonzero((table.codes[:, : len(prefix)] == np.asarray(prefix)[None, :]).all(1))


def benchmark_results(results_dir: str | Path | None = None) -> dict[str, pd.DataFrame]:
    d = Path(results_dir) if results_dir else Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    out = {}
    for p in sorted(d.glob("*.json")):
        try:
            out[p.stem] = pd.DataFrame(json.loads(p.read_text()))
        except (json.JSONDecodeError, ValueError):
            continue
    return out


def benchmark_metric_frames(df: pd.DataFrame, metrics: tuple[str, ...] = ("ndcg@10", "recall@10")) -> dict[str, pd.DataFrame]:
    """One tidy frame per metric for a chart, as people read benchmark plots: one bar per
    (dataset, method) — the mean over its seeds, with their count — never a sum across rows of
    different datasets or configs."""
    out = {}
    name = "run" if "run" in df.columns else ("method" if "method" in df.columns else None)
    if name is None:
        return out
    for metric in metrics:
        if metric not in df.columns:
            continue
        rows = df.dropna(subset=[metric])
        rows = rows[pd.to_numeric(rows[metric], errors="coerce").notna()]
        if rows.empty:
            continue
        keys = [c for c in ("dataset", name) if c in rows.columns]
        g = rows.assign(**{metric: rows[metric].astype(float)}).groupby(keys, dropna=False)[metric].agg(["mean", "count"]).reset_index()
        g["label"] = g[keys].astype(str).agg(" · ".join, axis=1)
        out[metric] = g.rename(columns={"mean": metric, "count": "seeds"}).sort_values(keys)[["label", metric, "seeds"]]
    return out


# ---------------- TagCF role graph ----------------
def find_role_graphs(*roots: str | Path) -> dict[str, str]:
    """Saved role graphs (folders with role_graph.json) under the given roots, by display name."""
    out = {}
    for root in roots:
        for p in sorted(Path(root).glob("**/role_graph.json")):
            out[str(p.parent)] = str(p.parent)
    return out


def role_graph_view(graph_dir: str | Path, *, role: str | None = None, min_weight: float = 0.0, max_edges: int = 30,
                    include_hidden: bool = False) -> dict[str, Any]:
    """Stats, an edge table (both directions) and a DOT drawing of the strongest role→topic edges:
    evidence first — ranked by strength (the lower bound of the lift), edges below the support
    floor hidden unless `include_hidden`; `counts` says how many edges the filters leave."""
    from recsage.knowledge.tagcf.graph import RoleGraph

    g = RoleGraph.load(graph_dir)
    parts = []
    for relation in ("role_to_topic", "topic_to_role"):
        e = g.edge_table(relation)
        e.insert(2, "relation", relation)
        parts.append(e)
    edges = pd.concat(parts, ignore_index=True)
    for col, nd in (("weight", 4), ("strength", 3), ("lift", 3), ("lift_low", 3), ("lift_high", 3), ("llm_lift", 3), ("llm_lift_low", 3)):
        edges[col] = edges[col].astype(float).round(nd)
    view = edges[(edges["relation"] == "role_to_topic") & (edges["weight"] >= min_weight)]
    if not include_hidden:
        view = view[view["above_floor"].astype(bool)]
    if role:
        view = view[view["source"] == role]
    matching = len(view)
    view = view.sort_values(["strength", "weight"], ascending=False).head(max_edges)
    dot = ["digraph G {", "rankdir=LR;", 'node [fontsize=10, style=filled];']
    for r in view["source"].unique():
        dot.append(f'"r:{r}" [label="{r}", shape=ellipse, fillcolor="#cfe2ff"];')
    for t in view["target"].unique():
        dot.append(f'"t:{t}" [label="{t}", shape=box, fillcolor="#ffe5b4"];')
    top = float(view["strength"].max()) if len(view) else 1.0
    for r in view.itertuples():
        dot.append(f'"r:{r.source}" -> "t:{r.target}" [penwidth={0.5 + 3 * r.strength / max(top, 1e-9):.2f}, '
                   f'tooltip="strength={r.strength} lift={r.lift} users={r.support_users} llm items={r.llm_count}"];')
    dot.append("}")
    return {"stats": g.stats(), "roles": g.roles, "topics": g.topics, "edges": edges, "shown": view, "dot": "\n".join(dot),
            "counts": {"matching": matching, "shown": len(view)}}


def role_profile(graph_dir: str | Path, role: str, n: int = 10) -> pd.DataFrame:
    """A role's strongest topics (above the floor) with lift, interval, support and example item titles."""
    from recsage.knowledge.tagcf.graph import RoleGraph

    return RoleGraph.load(graph_dir).role_profile(role, n)


def node_evidence(edges: pd.DataFrame, node: str) -> pd.DataFrame:
    """Every edge into or out of `node` (a role or topic name), strongest first, with its evidence."""
    rows = edges[(edges["source"] == node) | (edges["target"] == node)]
    return rows.sort_values(["above_floor", "strength", "weight"], ascending=False).reset_index(drop=True)


def _node_summary(edges: pd.DataFrame, node: str, kind: str, top: int = 5) -> str:
    out = edges[(edges["source"] == node) & (edges["relation"] == ("role_to_topic" if kind == "role" else "topic_to_role"))]
    out = out[out["above_floor"].astype(bool)].sort_values(["strength", "weight"], ascending=False).head(top)
    lines = [f"{kind}: {node}", f"strongest {'topics' if kind == 'role' else 'roles'} (above the support floor):"]
    lines += [f"  {r.target}  lift {r.lift:.2f} [{r.lift_low:.2f}, {r.lift_high:.2f}], {r.support_users} users, "
              f"{r.support_items} items, LLM {r.llm_count} items" for r in out.itertuples()]
    items = sorted({i for ex in out["example_items"] for i in (list(ex) if ex is not None else [])})[:8]
    users = sorted({u for ex in out["example_users"] for u in (list(ex) if ex is not None else [])})[:8]
    lines += [f"example items: {items}", f"example users: {users}"]
    return "\n".join(lines)


_EXTERNAL_ASSET = re.compile(r"<(script|link)\b[^>]*(?:src|href)=\"(?:https?:)?//[^\"]*\"[^>]*>(?:\s*</script>)?|<(script|link)\b[^>]*(?:src|href)=\"\.\./node_modules[^\"]*\"[^>]*>(?:\s*</script>)?", re.S)
_CLICK_SCRIPT = """
<pre id="evidence" style="font:12px monospace;white-space:pre-wrap;margin:6px 0;max-height:240px;overflow-y:auto;border-top:1px solid #ddd">Click a node for its evidence.</pre>
<script type="text/javascript">
network.on("click", function (params) {
  if (params.nodes.length) { document.getElementById("evidence").innerText = nodes.get(params.nodes[0]).title; }
});
</script>
"""


def _safe(text: Any) -> str:
    """Graph text comes from data and LLM output: no angle brackets reach the page's script block."""
    return str(text).replace("<", "‹").replace(">", "›")


def role_graph_html(view: dict[str, Any], *, height: int = 560) -> str:
    """An interactive (pan, zoom, drag, hover, click) drawing of the shown edges: vis-network via
    pyvis with its JavaScript inlined, every remote asset stripped (works offline, fetches
    nothing), and a click handler that prints the node's evidence under the graph as text."""
    from pyvis.network import Network

    net = Network(height=f"{height}px", width="100%", directed=True, cdn_resources="in_line")
    # strong repulsion and long springs, nodes never overlapping: 30–60 edges used to draw as a tangle of labels
    net.barnes_hut(gravity=-12000, central_gravity=0.15, spring_length=220, spring_strength=0.02, overlap=1)
    net.toggle_physics(len(view["shown"]) <= 300)
    shown, edges = view["shown"], view["edges"]
    top = float(shown["strength"].max()) if len(shown) else 1.0
    for r in shown["source"].unique():
        net.add_node(_safe(f"r:{r}"), label=_safe(r), title=_safe(_node_summary(edges, r, "role")), color="#8fb8ff", shape="dot")
    for t in shown["target"].unique():
        net.add_node(_safe(f"t:{t}"), label=_safe(t), title=_safe(_node_summary(edges, t, "topic")), color="#ffc98f", shape="box")
    for r in shown.itertuples():
        net.add_edge(_safe(f"r:{r.source}"), _safe(f"t:{r.target}"), value=float(r.strength) / max(top, 1e-9),
                     title=_safe(f"{r.source} → {r.target}: lift {r.lift} [{r.lift_low}, {r.lift_high}], {r.support_users} users, "
                                 f"LLM {r.llm_count} items, P(topic|role)={r.weight}"))
    html = _EXTERNAL_ASSET.sub("", net.generate_html())
    return html.replace("</body>", _CLICK_SCRIPT + "</body>")


# ---------------- Tagging ----------------
def tagging_setup(prepared: str | Path, tags_dir: str | Path) -> dict[str, Any]:
    """Vocabularies (seeded from the data on first use) and the items to choose from, most popular first."""
    from recsage.pipelines.tagcf import REVIEWED_TAGS, ensure_vocabularies, popular_items

    ds = Dataset.load(prepared)
    topics, roles = ensure_vocabularies(ds, tags_dir)
    items = popular_items(ds).head(300)
    reviewed = Path(tags_dir) / REVIEWED_TAGS
    return {"topics": topics.names, "roles": roles.names, "versions": {"topics": topics.version, "roles": roles.version},
            "items": pd.DataFrame({"item_id": items["item_id"], "title": items["title"].astype(str).str.slice(0, 80), "interactions": items["n_interactions"]}),
            "reviewed": pd.read_parquet(reviewed) if reviewed.exists() else None}


def save_reviewed_tags(tags_dir: str | Path, rows: pd.DataFrame) -> dict[str, Any]:
    from recsage.pipelines.tagcf import save_reviewed_tags as save

    return save(tags_dir, rows)


# measured in the workbench: 8 items took ~11 minutes with the default embedded model on 2 cores
TAGGING_SECONDS_PER_ITEM = 82.0


def tagging_estimate(n_items: int) -> dict[str, Any]:
    """What a tagging run of `n_items` will cost before it starts (the page asks to confirm long ones)."""
    seconds = n_items * TAGGING_SECONDS_PER_ITEM
    return {"items": n_items, "seconds": seconds, "text": f"≈ {seconds / 60:.0f} min" if seconds >= 90 else f"≈ {seconds:.0f} s",
            "needs_confirmation": seconds > 120}


# ---------------- PushGen ----------------
def push_preview(text: str, styles: list[str], *, n: int = 4, max_chars: int = 90, banned: tuple[str, ...] = (), reward_dir: str | None = None,
                 model: str | None = None) -> pd.DataFrame:
    """Candidates for one item text with scores, filter reasons and the chosen copy flagged."""
    from recsage.generation.pushgen.filters import PushConstraints
    from recsage.generation.pushgen.generator import PushCopyGenerator
    from recsage.generation.pushgen.reward import load_reward_model
    from recsage.generation.pushgen.styles import load_style_library
    from recsage.llm.embed import Embedder
    from recsage.llm.registry import LLMConfig, get_backend

    lib = load_style_library()
    reward = load_reward_model(reward_dir) if reward_dir else None
    gen = PushCopyGenerator(get_backend(config=LLMConfig.from_env(model=model)), lib, reward.score if reward else None, Embedder().embed, n=n)
    rows = []
    for res in gen.generate("preview", text, styles, PushConstraints(max_chars=max_chars, banned_words=banned)):
        for c in res.candidates:
            # without a reward model the ranking is the LLM's own order: no score to show
            rows.append({"style": res.style, "copy": c["text"], "chosen": c["text"] == res.chosen, "score": c["score"] if reward else None,
                         "passed": c["passed"], "chars": len(c["text"]), "reasons": "; ".join(c["reasons"])})
    return pd.DataFrame(rows)


def default_reward_dir(*roots: str | Path) -> str:
    """The first push reward model found under the given roots (the workbench workspace, the demo's
    output), so the studio ranks with it by default; "" when there is none."""
    for root in roots:
        for candidate in (Path(root) / "push" / "reward", Path(root) / "reward"):
            if (candidate / "config.json").exists():
                return str(candidate)
    return ""


def style_names() -> list[str]:
    from recsage.generation.pushgen.styles import load_style_library

    return load_style_library().names
