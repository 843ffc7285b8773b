import streamlit as st

from recsage.app.components import recommendations, show_error, workspace
from recsage.core.errors import RecsageError

st.title("Recommender playground")
root = workspace()
prepared = str(root / "scientific")
c1, c2 = st.columns([1, 3])
user = c1.number_input("User id", min_value=0, value=0, step=1)
k = c1.slider("Top-K", 5, 20, 10)
methods = c2.multiselect("Models", ["popularity", "itemknn"], default=["popularity", "itemknn"])
if methods:
    try:
        res = recommendations(prepared, int(user), tuple(methods), k)
    except RecsageError as e:
        show_error(e)
        st.stop()
    st.subheader("History (leave-one-out test input)")
    st.dataframe(res["history"], hide_index=True)
    if res["held_out"]:
        st.caption(f"Held-out next item: {res['held_out']['title']} (id {res['held_out']['item_id']})")
    cols = st.columns(len(methods))
    for col, m in zip(cols, methods):
        col.markdown(f"**{m}**")
        col.dataframe(res["models"][m][["rank", "title", "score"]], hide_index=True)
