import streamlit as st

from recsage.app.components import graph_file, role_graph_html, role_graph_view, role_graphs, role_profile, show_error
from recsage.core.errors import RecsageError
from recsage.pipelines.explore import node_evidence

st.title("Role graph explorer")
graphs = role_graphs()
if not graphs:
    st.info("No role graph yet. Build one with `recsage tagcf extract` then `recsage tagcf graph --out …` (or run `make demo`).")
    st.stop()
path = st.selectbox("Graph", list(graphs))
c1, c2 = st.columns([1, 3])
try:
    base = role_graph_view(path)
except RecsageError as e:
    show_error(e)
    st.stop()
role = c1.selectbox("Role", ["(all)"] + base["roles"])
min_weight = c1.slider("Min edge weight P(topic | role)", 0.0, 0.5, 0.0, 0.01)
max_edges = c1.slider("Edges drawn", 10, 300, 30, 10)
hidden = c1.checkbox("Show edges below the support floor", value=False,
                     help="thin evidence: fewer users than the floor and too few LLM-tagged items")
drawing = c1.radio("Drawing", ["interactive", "static"], horizontal=True, help="interactive: drag, zoom, hover; click a node for its evidence")
chosen = None if role == "(all)" else role
view = role_graph_view(path, role=chosen, min_weight=min_weight, max_edges=max_edges, include_hidden=hidden)
stats = view["stats"]
c1.metric("Edges (filters applied)", f"{view['counts']['shown']} of {view['counts']['matching']}")
c1.metric("Roles / topics", f"{stats['roles']} / {stats['topics']}")
floor = stats.get("support_floor") or {}
c1.caption(f"{stats.get('role_topic_edges_above_floor', 0)} of {stats.get('role_topic_edges', stats['edges'])} role→topic edges above the "
           f"support floor (≥{floor.get('users')} users or ≥{floor.get('llm_items')} LLM-tagged items). Edges backed by users come first, "
           f"then those backed only by LLM votes, each ranked by strength: the lower 95% bound of its lift.")
with c2:
    if drawing == "interactive":
        # our own generated page (labels escaped, JavaScript inlined, no remote assets)
        st.iframe(role_graph_html(path, role=chosen, min_weight=min_weight, max_edges=max_edges, include_hidden=hidden), height=840)  # the drawing (560) and the scrolling evidence panel under it
    else:
        st.graphviz_chart(view["dot"], use_container_width=True)
st.subheader("Edges and their evidence")
st.dataframe(view["shown"], hide_index=True)
if chosen:
    st.subheader(f"Role profile: {chosen}")
    st.dataframe(role_profile(path, chosen), hide_index=True)
st.subheader("Inspect a node")
node = st.selectbox("Role or topic", base["roles"] + base["topics"])
st.dataframe(node_evidence(base["edges"], node), hide_index=True)
d1, d2 = st.columns(2)
d1.download_button("Download edges (CSV)", view["edges"].to_csv(index=False), file_name="role_graph_edges.csv", mime="text/csv")
graphml = graph_file(path, "role_graph.graphml")
if graphml is not None:
    d2.download_button("Download GraphML", graphml, file_name="role_graph.graphml", mime="application/xml")
