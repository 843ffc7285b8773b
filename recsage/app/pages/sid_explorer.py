import pandas as pd
import streamlit as st

from recsage.app.components import SLOW_SID_METHODS, job_panel, show_error, sid_dir, sid_for, workspace
from recsage.core.errors import RecsageError
from recsage.pipelines import explore
from recsage.pipelines.jobs import cli_job_status, start_sid_job

st.title("SID explorer")
root = workspace()
prepared = str(root / "scientific")
c1, c2, c3 = st.columns(3)
method = c1.selectbox("Method", ["rqkmeans", "balanced", "rqvae", "parallel"])
levels = c2.selectbox("Levels", [2, 3], index=1)
codes = c3.selectbox("Codes per level", [32, 64, 256], index=1)
out = sid_dir(prepared, method, levels, codes)
if method in SLOW_SID_METHODS and not (out / "sids.parquet").exists():  # minutes of training: a background job, not a spinner
    status = cli_job_status(str(out) + ".job", out / "sids.parquet")
    if not job_panel(status, f"Fitting {method} {levels}×{codes} in the background", "The last fit stopped without a codebook"):
        st.caption(f"{method} trains a network: several minutes on 2 CPU cores. It runs as a background job.")
        if st.button("Fit in the background", type="primary"):
            try:
                start_sid_job(prepared, out, method=method, levels=levels, codes=codes)
                st.rerun()
            except RecsageError as e:
                show_error(e)
    st.stop()
try:
    view = explore.sid_overview(sid_for(prepared, method, levels, codes), prepared)
except RecsageError as e:
    show_error(e)
    st.stop()
rep, table, frame = view["report"], view["table"], view["frame"]
m = st.columns(4)
m[0].metric("items", f"{table.n_items:,}")
m[1].metric("collision rate (before dedup)", f"{rep.get('collision_rate', 0):.2%}")
m[2].metric("reconstruction error", f"{rep.get('reconstruction_error', 0):.3f}")
m[3].metric("semantic consistency", f"{rep.get('semantic_consistency', 0):.2f}")
st.subheader("Utilisation per level")
st.bar_chart(pd.DataFrame(rep.get("levels", [])), x="level", y=["utilisation", "entropy_norm"], stack=False)  # side by side: both are in [0, 1]
st.subheader("Item → SID")
q = st.text_input("Filter titles", "")
shown = frame[frame["title"].str.contains(q, case=False, regex=False)] if q else frame
st.dataframe(shown.head(200), hide_index=True)
st.subheader("SID prefix → items")
prefix_text = st.text_input("Prefix codes, comma separated (e.g. 12 or 12,3)", str(int(table.codes[0, 0])))
try:
    prefix = tuple(int(p) for p in prefix_text.split(",") if p.strip())
    ids = explore.items_with_prefix(table, prefix)
    st.write(f"{len(ids)} items share prefix {prefix}")
    st.dataframe(frame.iloc[ids].head(100), hide_index=True)
except ValueError:
    st.error("prefix must be integers separated by commas")
