"""A real browser: `streamlit run` on 127.0.0.1, Debian's Chromium driven by Playwright, a
screenshot of every page — in a temporary folder, or in $RECSAGE_SCREENSHOTS (the benchmark,
`bench_app.py --screenshots`, writes the committed ones there: `make test` leaves the tree as it was)."""

import shutil
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGES = [("", "Data", "interactions"), ("sid_explorer", "SID explorer", "Utilisation per level"),
         ("recommender", "Recommender playground", "History"), ("features", "Feature tables", "Feature tables"), ("role_graph", "Role graph explorer", "Edges and their evidence"),
         ("tagging", "Tagging", "Roles in vocabulary"),
         ("push_studio", "Push studio", "Candidates per style"), ("llm_playground", "LLM playground", "Prompt"), ("runs", "Runs", "bench_datasets")]


@pytest.fixture(scope="module")
def server(tmp_path_factory, seed_role_graph, launch_server):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: `make test` installs it (make browser)")
    ws = tmp_path_factory.mktemp("ws")
    seed_role_graph(ws)
    env = {**__import__("os").environ, "RECSAGE_WORKSPACE": str(ws)}
    return launch_server(lambda port: [sys.executable, "-m", "recsage.cli", "app", "--port", str(port)], "/_stcore/health", "streamlit", env=env)


def test_every_page_renders_in_chromium(server, tmp_path):
    import os

    from playwright.sync_api import sync_playwright

    SHOTS = Path(os.environ.get("RECSAGE_SCREENSHOTS") or tmp_path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    timings = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path, title, expected in PAGES:
            t = time.time()
            page.goto(f"{server}/{path}", timeout=120_000)
            page.get_by_text(title).first.wait_for(timeout=300_000)
            page.get_by_text(expected).first.wait_for(timeout=300_000)
            page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=300_000)
            if path == "role_graph":  # the interactive drawing (vis-network in an iframe) really draws
                page.frame_locator("iframe").first.locator("canvas").first.wait_for(timeout=120_000)
                page.wait_for_timeout(1500)
                graph = next(f for f in page.frames if f.query_selector("#evidence"))
                graph.evaluate("network.body.emitter.emit('click', {nodes: [nodes.getIds()[0]], edges: []})")  # a click on a node
                assert "strongest" in graph.inner_text("#evidence") and "example users" in graph.inner_text("#evidence")
            timings[title] = round(time.time() - t, 1)
            page.screenshot(path=str(SHOTS / f"{path or 'data'}.png"), full_page=True)
            assert page.get_by_text("Traceback").count() == 0
        browser.close()
    (SHOTS / "render_seconds.json").write_text(__import__("json").dumps(timings, indent=2))
