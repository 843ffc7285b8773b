import streamlit as st

from recsage.app.components import graph_file, role_graph_html, role_graph_view, role_graphs, show_error
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
min_weight = c1.slider("Min edge weight P(topic | role)", 0.0, 0.5, 0.02, 0.01)
max_edges = c1.slider("Edges drawn", 10, 300, 60, 10)
drawing = c1.radio("Drawing", ["interactive", "static"], horizontal=True, help="interactive: drag, zoom, hover; click a node for its evidence")
view = role_graph_view(path, role=None if role == "(all)" else role, min_weight=min_weight, max_edges=max_edges)
stats = view["stats"]
c1.metric("Edges", stats["edges"])
c1.metric("Roles / topics", f"{stats['roles']} / {stats['topics']}")
c1.caption(f"LLM evidence on {stats['edges_with_llm_evidence']} edges, behaviour on {stats['edges_with_behaviour_evidence']}")
with c2:
    if drawing == "interactive":
        # our own generated page (labels escaped, JavaScript inlined, no remote assets)
        st.iframe(role_graph_html(path, role=None if role == "(all)" else role, min_weight=min_weight, max_edges=max_edges), height=660)
    else:
        st.graphviz_chart(view["dot"], use_container_width=True)
st.subheader("Edges and their evidence")
st.dataframe(view["shown"], hide_index=True)
st.subheader("Inspect a node")
node = st.selectbox("Role or topic", base["roles"] + base["topics"])
st.dataframe(node_evidence(base["edges"], node), hide_index=True)
d1, d2 = st.columns(2)
d1.download_button("Download edges (CSV)", view["edges"].to_csv(index=False), file_name="role_graph_edges.csv", mime="text/csv")
graphml = graph_file(path, "role_graph.graphml")
if graphml is not None:
    d2.download_button("Download GraphML", graphml, file_name="role_graph.graphml", mime="application/xml")
