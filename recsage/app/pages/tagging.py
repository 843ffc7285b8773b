import streamlit as st

from recsage.app.components import job_panel, save_reviewed_tags, show_error, tagging_job_dir, tagging_setup, tags_dir_for, workspace
from recsage.core.errors import RecsageError
from recsage.pipelines.explore import list_prepared, tagging_estimate
from recsage.pipelines.jobs import start_tagging_job, tagging_job_result, tagging_job_status

st.title("Tagging")
st.caption("Run the LLM tagger on chosen items (restricted to the vocabularies), check the validated JSON, edit and accept tags. "
           "Accepted tags replace the LLM's when the role graph is built from this tags folder.")
ws = workspace()
names = [n for n in list_prepared(ws) if n != "upworthy"]
name = st.selectbox("Dataset", names)
prepared = str(ws / name)
try:
    setup = tagging_setup(prepared)
except RecsageError as e:
    show_error(e)
    st.stop()
c1, c2 = st.columns(2)
c1.metric("Topics in vocabulary", len(setup["topics"]))
c2.metric("Roles in vocabulary", len(setup["roles"]))
with st.expander("Vocabularies"):
    st.write("**Topics:** " + ", ".join(setup["topics"]))
    st.write("**Roles:** " + ", ".join(setup["roles"]))
items = setup["items"]
labels = {int(r.item_id): f"{r.item_id} · {r.title}" for r in items.itertuples()}
job_dir = tagging_job_dir(prepared)
status = tagging_job_status(job_dir)
# minutes of LLM work run as their own process: leaving the page does not stop them
if not job_panel(status, f"Tagging {status.get('total', 0)} item(s) in the background",
                 "The last tagging job stopped before it finished (run it again to tag the rest)"):
    chosen = st.multiselect("Items (most popular first)", list(labels), default=list(labels)[:1], format_func=labels.get, max_selections=8)
    estimate = tagging_estimate(len(chosen))
    st.caption(f"Estimated time for {len(chosen)} item(s): {estimate['text']} (embedded model on 2 CPU cores; a GPU server is far faster). "
               "It runs as a background job.")
    confirmed = not estimate["needs_confirmation"] or st.checkbox(f"Yes, run for {estimate['text']} in the background")
    if st.button("Tag with the LLM", type="primary", disabled=not chosen or not confirmed):
        try:
            start_tagging_job(prepared, tags_dir_for(prepared), chosen, job_dir)
            st.rerun()
        except RecsageError as e:
            show_error(e)
preview = tagging_job_result(job_dir)
if preview is not None:
    st.subheader("LLM output")
    st.dataframe(preview[["item_id", "title", "status", "json", "error", "raw"]], hide_index=True)
    st.subheader("Review and accept")
    st.caption("Separate tags with ';'. Every tag must be in the vocabulary (aliases are accepted).")
    edited = st.data_editor(preview[["item_id", "title", "topics", "roles"]], hide_index=True, disabled=["item_id", "title"], key="tag_editor")
    if st.button("Accept tags"):
        try:
            res = save_reviewed_tags(prepared, edited)
            tagging_setup.clear()
            st.success(f"Saved {res['saved']} item(s); {res['reviewed_items']} reviewed in total → {res['file']}")
        except RecsageError as e:
            show_error(e)
if setup["reviewed"] is not None:
    st.subheader("Reviewed tags")
    st.dataframe(setup["reviewed"], hide_index=True)
