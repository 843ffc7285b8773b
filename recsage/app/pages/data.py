import streamlit as st

from recsage.app.components import overview, show_error, workspace
from recsage.core.errors import RecsageError
from recsage.pipelines import explore

st.title("Data")
root = workspace()
names = explore.list_prepared(root)
name = st.selectbox("Prepared dataset", names, index=0)
info = overview(str(root / name))
cols = st.columns(4)
for col, (k, v) in zip(cols, [(k, v) for k, v in info["summary"].items() if k.startswith("n_")][:4]):
    col.metric(k.replace("n_", "").replace("_", " "), f"{v:,}")
st.caption(f"source: {info['meta'].get('source')} · licence: {info['meta'].get('licence', 'see data/README.md')}")
if "sequence_lengths" in info:
    st.subheader("Sequence lengths")
    st.bar_chart(info["sequence_lengths"], x="length", y="users")
    st.subheader("Most interacted items")
    st.dataframe(info["top_items"], hide_index=True)
if "tests" in info:
    st.subheader("Headline A/B tests")
    st.dataframe(info["tests"], hide_index=True)
st.subheader("Validation report")
st.json(info["validation"])

st.divider()
st.subheader("Check your own interaction file")
up = st.file_uploader("CSV / TSV / JSONL / Parquet (max 20 MB)", type=["csv", "tsv", "jsonl", "parquet"])
mapping = st.text_input("Column mapping", "user=user_id,item=item_id,timestamp=timestamp")
if up is not None:
    try:
        res = explore.validate_upload(up.getvalue(), up.name, mapping)
        st.success(f"{res['summary'].get('n_interactions', 0):,} interactions, {res['validation']['n_skipped']} rows skipped")
        st.json(res)
    except RecsageError as e:
        show_error(e)
