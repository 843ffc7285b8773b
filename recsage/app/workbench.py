"""recsage workbench: `recsage app` (binds 127.0.0.1), or `streamlit run recsage/app/workbench.py --server.address 127.0.0.1`."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent

st.set_page_config(page_title="recsage workbench", layout="wide")
pages = [
    st.Page(str(HERE / "pages" / "data.py"), title="Data", icon="📦", default=True),
    st.Page(str(HERE / "pages" / "sid_explorer.py"), title="SID explorer", icon="🔢"),
    st.Page(str(HERE / "pages" / "recommender.py"), title="Recommender", icon="🎯"),
    st.Page(str(HERE / "pages" / "features.py"), title="Features", icon="🧮"),
    st.Page(str(HERE / "pages" / "role_graph.py"), title="Role graph", icon="🕸️"),
    st.Page(str(HERE / "pages" / "tagging.py"), title="Tagging", icon="🏷️"),
    st.Page(str(HERE / "pages" / "push_studio.py"), title="Push studio", icon="📣"),
    st.Page(str(HERE / "pages" / "comments.py"), title="Comments", icon="🗨️"),
    st.Page(str(HERE / "pages" / "llm_playground.py"), title="LLM playground", icon="💬"),
    st.Page(str(HERE / "pages" / "runs.py"), title="Runs", icon="📈"),
]
st.navigation(pages).run()
