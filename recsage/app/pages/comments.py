import streamlit as st

from recsage.app.components import comments_view, lcu_folders, show_error
from recsage.core.errors import RecsageError
from recsage.pipelines.lcu import thread_comments, thread_list, thread_users, user_engagement

st.title("Comments (LCU)")
folders = lcu_folders()
if not folders:
    st.info("No LCU work folder yet. Build one on the Reddit threads (never bundled: no licence), e.g. "
            "`recsage lcu annotate --data ../shared/data/reddit-college-comments --out .recsage/workbench/lcu/a2c --max-threads 2000 --n 200`, "
            "then `recsage lcu distill` and `recsage lcu train` with the same --data and --out.")
    st.stop()
name = st.selectbox("LCU folder", list(folders))
if name is None:  # nothing to choose (only when run bare, outside `streamlit run`)
    st.stop()
try:
    view = comments_view(folders[name])
except RecsageError as e:
    show_error(e)
    st.stop()
if view.metrics:
    t = view.metrics.get("test", {})
    c = st.columns(4)
    for col, key in zip(c, ("auc", "xauc", "user_ndcg@1", "popular_ndcg@1")):
        col.metric(f"test {key}", "—" if key not in t else f"{t[key]:.3f}")
split = st.radio("Threads from split", ["test", "valid", "train"], horizontal=True)
threads = thread_list(view, split)
if not len(threads):
    st.info(f"No threads with examples in the {split} split.")
    st.stop()
label = st.selectbox("Thread", [f"{r.item_id}: {r.title} ({r.users} users)" for r in threads.itertuples()])
item_id = int(label.split(":")[0])
st.subheader("Comments and their LLM labels")
st.dataframe(thread_comments(view, item_id), hide_index=True, width="stretch")
user = st.selectbox("User", thread_users(view, item_id))
try:
    u = user_engagement(view, item_id, user)
except RecsageError as e:
    show_error(e)
    st.stop()
c = st.columns(3)
c[0].metric("Predicted stay (proxy, minutes)", f"{u['predicted_minutes']:.1f}" if "predicted_minutes" in u else "no model")
c[1].metric("P(long engagement)", f"{u['p_long']:.2f}" if "p_long" in u else "—")
c[2].metric("Actual (proxy, minutes)", f"{u['actual_minutes']:.1f}", help="minutes between first and last comment (capped at 24 h) + 1 per comment")
st.write(f"Why: {u['reasons']}.")
st.subheader("The comments this user saw, ranked by the model")
seen = u["seen"]
order = "user-specific score" if "user-specific score" in seen else "upvotes"
st.dataframe(seen.sort_values(order, ascending=False), hide_index=True, width="stretch")
