"""Cached handles on recsage APIs for the pages: the only place Streamlit caching lives."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from recsage.pipelines import explore

WORKSPACE = Path(os.environ.get("RECSAGE_WORKSPACE", ".recsage/workbench"))


@st.cache_resource(show_spinner="Preparing the bundled sample…")
def workspace() -> Path:
    return explore.ensure_workspace(WORKSPACE)


@st.cache_data(show_spinner=False)
def overview(path: str) -> dict:
    return explore.dataset_overview(path)


@st.cache_data(show_spinner="Training the models for this dataset…")
def recommendations(prepared: str, user_id: int, methods: tuple[str, ...], k: int, model_dirs: tuple[str, ...] = ()) -> dict:
    return explore.user_recommendations(prepared, user_id, methods, k, model_dirs)


@st.cache_data(show_spinner=False)
def saved_models(prepared: str) -> dict:
    from recsage.datasets import Dataset

    return explore.find_saved_models(Dataset.load(prepared).n_items, WORKSPACE, Path(".recsage/demo"))


SLOW_SID_METHODS = ("rqvae",)  # fitted as a background job (minutes on 2 cores), the others inline (seconds)


def sid_dir(prepared: str, method: str, levels: int, codes: int) -> Path:
    return Path(prepared).parent / "sid" / f"{Path(prepared).name}-{method}-{levels}x{codes}"


@st.cache_resource(show_spinner="Fitting a semantic-ID codebook…")
def sid_for(prepared: str, method: str, levels: int, codes: int) -> str:
    from recsage.datasets import Dataset
    from recsage.pipelines.sid import build_semantic_ids

    out = sid_dir(prepared, method, levels, codes)
    if not (out / "sids.parquet").exists():
        build_semantic_ids(Dataset.load(prepared), method=method, levels=levels, codes=codes, collision="suffix", out=out)
    return str(out)


def show_error(e: Exception) -> None:
    st.error(str(e))


def job_panel(status: dict, running: str, crashed: str) -> bool:
    """A background job's state from `pipelines.jobs`: while it runs, `running` (with the elapsed
    time), its progress when known and its log's tail (returns True); after a crash, `crashed`
    and the log; else nothing."""
    if status["running"]:
        st.info(f"{running}: {status['elapsed']:.0f} s so far (you can leave this page).")
        if status.get("total"):
            st.progress(status["done"] / status["total"], text=f"{status['done']} of {status['total']} done")
        st.code("\n".join(status["log_tail"]) or "(no output yet)")
        st.button("Refresh")
        return True
    if status.get("crashed"):
        st.error(f"{crashed}; its log:")
        st.code("\n".join(status["log_tail"]))
    return False


@st.cache_data(show_spinner=False)
def role_graphs() -> dict:
    return explore.find_role_graphs(WORKSPACE, Path(".recsage/demo"), Path(".recsage/bench/tagcf"))


@st.cache_data(show_spinner=False)
def role_graph_view(path: str, role: str | None = None, min_weight: float = 0.0, max_edges: int = 30, include_hidden: bool = False) -> dict:
    return explore.role_graph_view(path, role=role, min_weight=min_weight, max_edges=max_edges, include_hidden=include_hidden)


@st.cache_data(show_spinner="Drawing the graph…")
def role_graph_html(path: str, role: str | None = None, min_weight: float = 0.0, max_edges: int = 30, include_hidden: bool = False) -> str:
    return explore.role_graph_html(role_graph_view(path, role, min_weight, max_edges, include_hidden))


@st.cache_data(show_spinner=False)
def role_profile(path: str, role: str) -> object:
    return explore.role_profile(path, role)


def style_names() -> list[str]:
    return explore.style_names()


@st.cache_data(show_spinner="Writing candidates with the LLM…")
def push_preview(text: str, styles: list[str], n: int, max_chars: int, banned: tuple[str, ...], reward_dir: str | None) -> object:
    return explore.push_preview(text, styles, n=n, max_chars=max_chars, banned=banned, reward_dir=reward_dir)


def graph_file(folder: str, name: str) -> bytes | None:
    path = Path(folder) / name
    return path.read_bytes() if path.exists() else None


def tags_dir_for(prepared: str) -> Path:
    return WORKSPACE / "tagcf" / Path(prepared).name


@st.cache_data(show_spinner=False)
def tagging_setup(prepared: str) -> dict:
    return explore.tagging_setup(prepared, tags_dir_for(prepared))


def tagging_job_dir(prepared: str) -> Path:
    return WORKSPACE / "jobs" / "tagging" / Path(prepared).name


def save_reviewed_tags(prepared: str, rows) -> dict:
    return explore.save_reviewed_tags(tags_dir_for(prepared), rows)


def default_reward() -> str:
    return explore.default_reward_dir(WORKSPACE, Path(".recsage/demo"))


def push_job_dir() -> Path:
    return WORKSPACE / "jobs" / "push"


def bundled_items() -> Path:
    """The prepared bundled catalogue's items (id, title, description) as batch-job input."""
    return workspace() / "scientific" / "items.parquet"


@st.cache_data(show_spinner="Ranking and explaining…")
def ranker_explanation(model_dir: str, prepared: str, user_id: int, k: int) -> dict:
    return explore.ranker_explanation(model_dir, prepared, user_id, k)


def thinking_explanation(model_dir: str, prepared: str, user_id: int, k: int) -> dict:
    return explore.thinking_explanation(model_dir, prepared, user_id, k)


def feature_folders() -> dict:
    return explore.find_feature_folders(WORKSPACE, Path(".recsage/demo"))


@st.cache_data(show_spinner=False)
def feature_overview(folder: str) -> dict:
    return explore.feature_overview(folder)


@st.cache_data(show_spinner=False)
def ranker_importance(model_dir: str) -> object:
    return explore.ranker_group_importance(model_dir)


def lcu_folders() -> dict:
    """LCU work folders (with sections.json) under the workspace's lcu/ and the demo's output."""
    roots = [WORKSPACE / "lcu", Path(".recsage") / "demo" / "lcu"]
    found = {}
    for root in roots:
        if (root / "sections.json").exists():
            found[str(root)] = str(root)
        if root.exists():
            for d in sorted(root.iterdir()):
                if (d / "sections.json").exists():
                    found[str(d)] = str(d)
    return found


@st.cache_resource(show_spinner="Opening the LCU folder (sections, labels, model)…")
def comments_view(folder: str):
    from recsage.pipelines.lcu import open_comments

    return open_comments(folder)
