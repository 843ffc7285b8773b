import streamlit as st

from recsage.app.components import feature_folders, feature_overview, ranker_importance, saved_models, show_error, workspace
from recsage.core.errors import RecsageError

st.title("Feature tables")
root = workspace()
folders = feature_folders()
if not folders:
    st.info("No feature tables yet: `make demo` builds them for the bundled sample, or `recsage features build --data … --out …`.")
    st.stop()
name = st.selectbox("Feature folder", list(folders))
try:
    ov = feature_overview(folders[name])
except RecsageError as e:
    show_error(e)
    st.stop()
m = ov["manifest"]
c = st.columns(4)
c[0].metric("Items", m["rows"]["items"])
c[1].metric("Users", m["rows"]["users"])
c[2].metric("Signal groups", len(m["groups"]))
c[3].metric("Feature version", m["feature_version"])
st.caption(f"Dataset {m['dataset']} (fingerprint {m['dataset_fingerprint']}), protocol {m['protocol']}: {m['point_in_time']}.")
st.subheader("Signals present and absent")
st.dataframe(ov["groups"], hide_index=True, width="stretch")
st.subheader("Schema")
st.dataframe(ov["schema"], hide_index=True, width="stretch")
tab_items, tab_users = st.tabs(["Items (first 20)", "Users (first 20)"])
tab_items.dataframe(ov["items"], hide_index=True)
tab_users.dataframe(ov["users"], hide_index=True)
d = st.columns(3)
for col, file, mime in zip(d, ("items.parquet", "users.parquet", "manifest.json"), ("application/octet-stream",) * 2 + ("application/json",)):
    col.download_button(f"Download {file}", data=open(f"{folders[name]}/{file}", "rb").read(), file_name=file, mime=mime)
rankers = {k: v for k, v in saved_models(str(root / "scientific")).items() if k.startswith("two-stage:")}
if rankers:
    st.subheader("What each signal group is worth to a ranker (share of LightGBM gain)")
    chosen = st.selectbox("Ranker", list(rankers))
    st.bar_chart(ranker_importance(rankers[chosen]), x="group", y="gain share")
