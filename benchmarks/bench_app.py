"""Workbench: time to first render of every page in a real Chromium, and of the role graph with
≥ 5,000 edges (server-side view + interactive drawing, then in the browser).

Run: .venv/bin/python benchmarks/bench_app.py [--screenshots]
The large graph is real: MovieLens-100K users' profile combinations (occupation · age band ·
gender, 168 roles) against the 18 genres, edges from behavioural co-occurrence (5,558 edges).
Needs Debian's Chromium (`make browser`). Writes results/bench_app.json and the large graph's
screenshot; with `--screenshots` it also runs the browser test with RECSAGE_SCREENSHOTS pointed at
results/screenshots/, so the committed page screenshots come from here, never from `make test`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _common import REPO, RESULTS, measure, print_table, require_shared, write_results

PAGES = [("", "Data", "interactions"), ("sid_explorer", "SID explorer", "Utilisation per level"),
         ("recommender", "Recommender playground", "History"), ("features", "Feature tables", "Feature tables"), ("role_graph", "Role graph explorer", "Edges and their evidence"),
         ("tagging", "Tagging", "Roles in vocabulary"), ("push_studio", "Push studio", "Candidates per style"),
         ("llm_playground", "LLM playground", "Prompt"), ("runs", "Runs", "bench_datasets")]


def build_large_graph(workspace: Path) -> tuple[Path, int]:
    from recsage.datasets import load_dataset
    from recsage.knowledge.tagcf.extract import tags_from_metadata
    from recsage.knowledge.tagcf.graph import RoleGraph
    from recsage.pipelines.tagcf import seed_vocabularies, user_role_labels

    ml = load_dataset("movielens-100k", require_shared() / "movielens-100k")
    topics, _ = seed_vocabularies(ml)
    labels = user_role_labels(ml)
    profiles = labels.assign(profile=labels["occupation"] + " · " + labels["age"] + " · " + labels["gender"])[["user_id", "profile"]]
    tags = tags_from_metadata(ml.items, topics).assign(roles=[[] for _ in range(len(ml.items))])
    g = RoleGraph.build(sorted(profiles["profile"].unique()), topics.names, tags, ml.interactions, profiles)
    out = workspace / "tagcf" / "ml100k-profile-combinations" / "graph"
    g.save(out)
    return out, g.stats()["edges"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from recsage.pipelines.explore import ensure_workspace, role_graph_html, role_graph_view

    work = REPO / ".recsage" / "bench" / "app"
    ws = ensure_workspace(work / "workspace")
    rows = []
    row = {"dataset": "ml100k", "method": "build role graph (profile combinations)"}
    with measure(row):
        graph_dir, n_edges = build_large_graph(ws)
    row["edges"] = n_edges
    rows.append(row)
    for drawn in (60, 300):
        row = {"dataset": "ml100k", "method": f"role graph view + interactive html, {drawn} edges drawn", "edges": n_edges}
        with measure(row):
            view = role_graph_view(graph_dir, max_edges=drawn)
            html = role_graph_html(view)
        row["html_kb"] = round(len(html) / 1024)
        rows.append(row)

    chromium = "/usr/bin/chromium"
    if not Path(chromium).exists():
        sys.exit("Chromium missing: run `make browser`")
    port = free_port()
    env = {**os.environ, "RECSAGE_WORKSPACE": str(ws)}
    proc = subprocess.Popen([sys.executable, "-m", "recsage.cli", "app", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright

        shots = RESULTS / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path, title, expected in PAGES:
                t = time.perf_counter()
                page.goto(f"{base}/{path}", timeout=300_000)
                page.get_by_text(title).first.wait_for(timeout=600_000)
                page.get_by_text(expected).first.wait_for(timeout=600_000)
                page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=600_000)
                first = time.perf_counter() - t
                r = {"dataset": "bundled sample", "method": f"page: {title}", "seconds": round(first, 2)}
                if path == "role_graph":  # the ≥5,000-edge graph is the only one in this workspace
                    page.frame_locator("iframe").first.locator("canvas").first.wait_for(timeout=600_000)
                    r.update({"dataset": "ml100k", "method": "page: Role graph explorer (interactive drawing visible)", "edges": n_edges,
                              "seconds": round(time.perf_counter() - t, 2), "first_render_seconds": round(first, 2)})
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(shots / "role_graph_5k_edges.png"), full_page=True)
                rows.append(r)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    print_table(rows, ["dataset", "method", "edges", "seconds", "first_render_seconds", "peak_mb", "html_kb"],
                "Workbench render times (first visit, cold caches; 2 cores, headless Chromium)")
    write_results("bench_app", rows)
    if "--screenshots" in sys.argv:  # every page, by the browser test, into the committed folder
        env = {**os.environ, "RECSAGE_SCREENSHOTS": str(RESULTS / "screenshots")}
        subprocess.run([sys.executable, "-m", "pytest", "-q", str(REPO / "tests" / "app" / "test_browser.py")], env=env, check=True)


if __name__ == "__main__":
    main()
