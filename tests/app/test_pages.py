"""Every workbench page renders on the bundled sample and its main widgets act (AppTest)."""

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
    assert at.metric and int(at.metric[0].value) > 400
    assert len(at.dataframe) == 1
    at.selectbox[1].select("student").run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert len(shown) and set(shown["source"]) == {"student"}


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
