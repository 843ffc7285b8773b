"""Every workbench page renders on the bundled sample and its main widgets act (AppTest)."""

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

PAGES = Path(__file__).resolve().parents[2] / "recsage" / "app" / "pages"


@pytest.fixture(autouse=True)
def workspace(tmp_path_factory, monkeypatch):
    ws = tmp_path_factory.getbasetemp() / "workbench"
    monkeypatch.setenv("RECSAGE_WORKSPACE", str(ws))
    import recsage.app.components as comp

    monkeypatch.setattr(comp, "WORKSPACE", ws)


def run(page: str, timeout: int = 300) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def test_data_page():
    at = run("data.py")
    assert any("interactions" in m.label for m in at.metric)
    at.selectbox[0].select("upworthy").run()
    assert not at.exception
    assert any("experiments" in m.label for m in at.metric)


def test_recommender_page_shows_recommendations():
    at = run("recommender.py")
    assert len(at.dataframe) >= 3  # history + one table per model
    at.number_input[0].set_value(5).run()
    assert not at.exception and len(at.dataframe) >= 3


def test_recommender_page_shows_trained_models_side_by_side():
    """A model trained and saved in the workspace shows up next to the baselines."""
    import recsage.app.components as comp
    from recsage.pipelines.explore import ensure_workspace
    from recsage.pipelines.train import train_recommender

    ws = ensure_workspace(comp.WORKSPACE)
    train_recommender("sasrec", ws / "scientific", out=ws / "models" / "sasrec-tiny", epochs=1, max_steps_per_epoch=5, dim=16, progress=False)
    comp.saved_models.clear()
    at = run("recommender.py")
    chosen = at.multiselect[0].value
    assert "sasrec: sasrec-tiny/model" in chosen
    assert len(at.dataframe) == 2 + len(chosen)  # history, the per-model summary, one table per model
    assert list(at.dataframe[1].value.columns)[:2] == ["model", "held-out rank"]
    assert len(at.dataframe[-1].value) == 10


def test_recommender_page_shows_a_thinking_models_chain():
    """A OneReason thinking model in the workspace (synthetic unit-test codebook): its panel shows
    the derived interests, the wording and the model's deduction."""
    import numpy as np

    import recsage.app.components as comp
    from recsage.datasets import Dataset
    from recsage.pipelines.explore import ensure_workspace
    from recsage.pipelines.train import train_recommender
    from recsage.tokenizers import SIDTable

    ws = ensure_workspace(comp.WORKSPACE)
    n = Dataset.load(ws / "scientific").n_items
    SIDTable(np.stack([np.arange(n) // 64, np.arange(n) % 64, np.zeros(n, dtype=int)], 1)).save(ws / "sid-synthetic")
    train_recommender("thinking", ws / "scientific", sid=str(ws / "sid-synthetic"), out=ws / "models" / "thinking-tiny", epochs=1,
                      max_steps_per_epoch=3, dim=32, n_heads=2, valid_users=50, progress=False, adapt_defaults=False)
    comp.saved_models.clear()
    try:
        at = run("recommender.py")
        at.multiselect[0].set_value(["itemknn", "thinking: thinking-tiny/model"]).run()
        assert not at.exception, at.exception
        assert any("Chain of thought" in h.value for h in at.subheader)
        assert any("deduction" in m.value for m in at.markdown)
        assert len(at.dataframe) == 5  # history, summary, two models, the chain's interests
    finally:  # the workspace is shared by the page tests: leave it as it was
        shutil.rmtree(ws / "models" / "thinking-tiny", ignore_errors=True)
        comp.saved_models.clear()


def test_features_page_and_ranker_explanations():
    """Feature tables and a ranker saved in the workspace: the Features page shows the schema and
    the group importance; the Recommender page shows the ranker's top-K with "why this item"."""
    import recsage.app.components as comp
    from recsage.pipelines.explore import ensure_workspace
    from recsage.pipelines.features import build_features
    from recsage.pipelines.ranking import train_ranking

    ws = ensure_workspace(comp.WORKSPACE)
    build_features(ws / "scientific", ws / "features" / "scientific", text=False)
    train_ranking(ws / "scientific", "itemknn,popularity", features=ws / "features" / "scientific", out=ws / "models" / "ranker",
                  n_candidates=30, ranker={"compact_rounds": 10})
    comp.saved_models.clear()
    at = run("features.py")
    assert any(m.label == "Items" for m in at.metric)
    assert len(at.dataframe) >= 4  # groups, schema, items, users
    assert any("signal group" in h.value for h in at.subheader)
    at = run("recommender.py")
    assert "two-stage: ranker/model" in at.multiselect[0].value
    assert any("Why these items" in h.value for h in at.subheader)
    assert "why" in at.dataframe[-1].value.columns and len(at.dataframe[-1].value) == 10


def test_sid_explorer_page():
    at = run("sid_explorer.py")
    assert any("collision" in m.label for m in at.metric)
    at.text_input[1].input("0").run()
    assert not at.exception


@pytest.mark.slow
def test_llm_playground_generates_with_the_embedded_model():
    at = run("llm_playground.py")
    at.text_area[0].input("Reply with one word: hello").run()
    at.button[0].click().run(timeout=300)
    assert not at.exception and not at.error


def test_runs_page():
    run("runs.py")


def test_role_graph_page_draws_a_real_graph(seed_role_graph):
    """A graph from real MovieLens rows (genres, profiles; synthetic LLM roles) saved in the workspace."""
    import recsage.app.components as comp

    seed_role_graph(comp.WORKSPACE)
    comp.role_graphs.clear()
    at = run("role_graph.py")
    shown_n, matching = (int(v) for v in at.metric[0].value.split(" of "))
    assert shown_n == 30 and matching > 300  # evidence first: 30 drawn of the edges above the support floor
    assert len(at.dataframe) == 2  # the shown edges, and the node inspector
    first = at.dataframe[0].value
    assert first["above_floor"].all() and (first["strength"].diff().dropna() <= 1e-9).all()
    at.selectbox[1].select("student").run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert len(shown) and set(shown["source"]) == {"student"}
    assert int(at.metric[0].value.split(" of ")[1]) == len(shown) < matching  # the count follows the role filter
    profile = at.dataframe[1].value  # the role profile: strongest topics with lift, interval and support
    assert {"lift", "lift_low", "lift_high", "support_users"} <= set(profile.columns) and (profile["source"] == "student").all()
    at.selectbox[2].select("Drama").run()  # inspect a node: its edges in both directions, with evidence
    evidence = at.dataframe[-1].value
    assert len(evidence) and ((evidence["source"] == "Drama") | (evidence["target"] == "Drama")).all()
    assert {"role_to_topic", "topic_to_role"} <= set(evidence["relation"])


def test_interactive_role_graph_is_self_contained(seed_role_graph, tmp_path):
    """The pyvis drawing inlines its JavaScript, fetches nothing remote, and reports clicks as text."""
    import re

    from recsage.pipelines.explore import role_graph_html, role_graph_view

    html = role_graph_html(role_graph_view(seed_role_graph(tmp_path), max_edges=40))
    assert "vis.Network" in html or "new vis" in html
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)
    assert "node_modules" not in html
    assert 'network.on("click"' in html and "innerText" in html
    view = role_graph_view(seed_role_graph(tmp_path), max_edges=40)
    view["shown"] = view["shown"].assign(source="</script><script>alert(1)</script>")
    assert "<script>alert" not in role_graph_html(view)  # text from data/LLM cannot open a script


@pytest.mark.slow
def test_push_studio_generates_with_the_real_llm(monkeypatch):
    monkeypatch.setenv("RECSAGE_LLM_MODEL", "small")
    at = run("push_studio.py")
    at.multiselect[0].set_value(["question"])
    at.slider[0].set_value(2)
    at.button[0].click().run()
    assert not at.exception, at.exception
    df = at.dataframe[0].value
    assert len(df) >= 1 and set(df["style"]) == {"question"}


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.mark.slow
def test_tagging_page_tags_in_the_background_reviews_and_accepts_with_the_real_llm(monkeypatch):
    """The LLM run is a background job (8 items once took 11 minutes behind a spinner): the page
    starts it, shows its progress, and offers the validated JSON for review when it has finished."""
    import time

    import recsage.app.components as comp
    from recsage.pipelines.jobs import tagging_job_status

    monkeypatch.setenv("RECSAGE_LLM_MODEL", "small")
    at = run("tagging.py")
    assert int(at.metric[0].value) > 5 and int(at.metric[1].value) > 10  # categories; starter roles (no profiles)
    _button(at, "Tag with the LLM").click().run()
    assert not at.exception and not at.error, at.error
    job_dir = comp.tagging_job_dir(str(comp.WORKSPACE / "scientific"))
    assert tagging_job_status(job_dir)["exists"]
    deadline = time.time() + 600
    while tagging_job_status(job_dir)["running"] and time.time() < deadline:
        time.sleep(1)
    status = tagging_job_status(job_dir)
    assert status["finished"] and status["done"] == status["total"] == 1, status
    at.run()
    assert not at.exception and not at.error, at.error
    preview = at.dataframe[0].value
    assert len(preview) == 1 and preview["status"][0] == "ok"  # enum-constrained decoding: always valid JSON
    assert set(json.loads(preview["json"][0])) == {"topics", "roles", "confidence"}
    _button(at, "Accept tags").click().run()
    assert not at.exception and not at.error, at.error
    assert at.success and "Saved 1 item" in at.success[0].value


@pytest.mark.slow
def test_push_studio_batch_job_runs_in_the_background(monkeypatch):
    """Launch from the page, the job runs as its own process, the page monitors it from its files."""
    import time

    import recsage.app.components as comp
    from recsage.pipelines.jobs import job_status

    monkeypatch.setenv("RECSAGE_LLM_MODEL", "small")
    at = run("push_studio.py")
    at.multiselect[0].set_value(["question"]).run()
    at.number_input[0].set_value(1)
    at.number_input[1].set_value(1)
    _button(at, "Launch batch job").click().run()
    assert not at.exception and not at.error, at.error
    deadline = time.time() + 600
    while job_status(comp.push_job_dir())["running"] and time.time() < deadline:
        time.sleep(2)
    status = job_status(comp.push_job_dir())
    assert status["finished"] and status["done"] == 1, status
    at.run()
    results = at.dataframe[-1].value
    assert len(results) == 1 and results["style"][0] == "question"


def test_comments_page_shows_labels_ranking_and_a_users_engagement(lcu_work):
    import shutil

    import recsage.app.components as comp

    shutil.copytree(lcu_work, comp.WORKSPACE / "lcu" / "a2c", dirs_exist_ok=True)
    at = run("comments.py")
    assert any("test auc" in m.label for m in at.metric)
    assert len(at.dataframe) == 2  # the thread's comments + what the chosen user saw
    assert any("Predicted stay" in m.label for m in at.metric)
    assert any("Why:" in md.value for md in at.markdown)
    at.radio[0].set_value("valid").run()
    assert not at.exception


def test_llm_playground_refuses_a_bad_schema_without_generating(monkeypatch):
    """The schema is checked before a backend exists (it used to fail after ~35 s of generation)."""
    import recsage.pipelines.llm as llm_pipeline

    monkeypatch.setattr(llm_pipeline, "get_backend", lambda **kw: pytest.fail("a backend was created for a bad schema"))
    at = AppTest.from_file(str(PAGES / "llm_playground.py"), default_timeout=60)
    at.run()
    at.text_area[1].set_value(json.dumps({"type": "object", "properties": {"a": {"type": "strng"}}}))
    at.button[0].click().run()
    assert not at.exception
    assert any("not a valid JSON Schema" in e.value for e in at.error)


def test_benchmark_charts_average_seeds_and_never_sum_across_datasets():
    import pandas as pd

    from recsage.pipelines.explore import benchmark_metric_frames

    df = pd.DataFrame([{"dataset": "beauty", "run": "sasrec", "ndcg@10": 0.04}, {"dataset": "beauty", "run": "sasrec", "ndcg@10": 0.02},
                       {"dataset": "ml100k", "run": "sasrec", "ndcg@10": 0.10}, {"dataset": "beauty", "run": "itemknn", "ndcg@10": 0.05}])
    f = benchmark_metric_frames(df)["ndcg@10"].set_index("label")
    assert f.loc["beauty · sasrec", "ndcg@10"] == pytest.approx(0.03) and f.loc["beauty · sasrec", "seeds"] == 2
    assert f.loc["ml100k · sasrec", "ndcg@10"] == pytest.approx(0.10) and len(f) == 3


def test_runs_page_renders_one_chart_per_metric():
    at = run("runs.py")
    assert not at.exception


def test_tagging_page_states_the_cost_and_asks_before_a_long_run():
    at = run("tagging.py")
    assert any("Estimated time for 1 item" in c.value for c in at.caption) and not at.checkbox
    at.multiselect[0].set_value([int(o.split(" · ")[0]) for o in at.multiselect[0].options[:3]]).run()
    assert not at.exception
    assert any("Estimated time for 3 item" in c.value for c in at.caption)
    assert at.checkbox and _button(at, "Tag with the LLM").disabled  # nothing starts until the cost is confirmed


def test_sid_explorer_fits_a_slow_codebook_as_a_background_job():
    """An RQ-VAE is not fitted behind a spinner (689 s once): the page starts a job and shows its progress."""
    import json
    import os
    import signal

    import recsage.app.components as comp

    at = run("sid_explorer.py")
    at.selectbox[0].set_value("rqvae").run()
    assert not at.exception and not at.metric  # nothing fitted inline
    _button(at, "Fit in the background").click().run()
    assert not at.exception
    job = comp.sid_dir(str(comp.WORKSPACE / "scientific"), "rqvae", 3, 64).with_name("scientific-rqvae-3x64.job")
    meta = json.loads((job / "job.json").read_text())
    try:
        assert meta["kind"] == "sid" and "rqvae" in meta["cmd"]
        assert any("in the background" in i.value for i in at.info) or (job.parent / "scientific-rqvae-3x64" / "sids.parquet").exists()
    finally:
        try:
            os.killpg(os.getpgid(meta["pid"]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_upload_errors_name_the_users_file():
    from recsage.core.errors import InvalidInputError
    from recsage.pipelines.explore import validate_upload

    with pytest.raises(InvalidInputError) as e:
        validate_upload(b"user_id,item_id,timestamp\nu1,i1,1\nu1,i2,2,EXTRA\n", "my_clicks.csv")
    assert "my_clicks.csv" in str(e.value) and "/tmp" not in str(e.value)
    res = validate_upload(b"user_id,item_id,timestamp\nu1,i1,1\nu1,,2\n", "my_clicks.csv")
    assert all(ex["file"] == "my_clicks.csv" for ex in res["validation"]["examples"])
