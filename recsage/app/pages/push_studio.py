import streamlit as st

from recsage.app.components import bundled_items, default_reward, push_job_dir, push_preview, show_error, style_names
from recsage.pipelines.jobs import job_results, job_status, start_push_job, stop_job
from recsage.core.errors import RecsageError

st.title("Push studio")
st.caption("N candidates per style from the LLM → length/banned/faithfulness/duplicate filters → reward-model ranking.")
text = st.text_area("Item text", "Digital pH meter with 0.01 resolution and automatic temperature compensation, for labs, pools and hydroponics.")
c1, c2, c3 = st.columns(3)
styles = c1.multiselect("Styles", style_names(), default=["question", "benefit_led"])
n = c2.slider("Candidates per style", 1, 8, 3)
max_chars = c3.slider("Max characters", 30, 140, 90)
banned = st.text_input("Banned words (comma-separated)", "free, guaranteed")
reward = st.text_input("Reward model folder (optional; from `recsage push train-reward`; the demo's is preselected)", default_reward())
if st.button("Generate", type="primary"):
    try:
        df = push_preview(text, styles, n=n, max_chars=max_chars, banned=tuple(w.strip() for w in banned.split(",") if w.strip()), reward_dir=reward or None)
    except RecsageError as e:
        show_error(e)
        st.stop()
    chosen = df[df["chosen"]]
    for row in chosen.itertuples():
        st.success(f"**{row.style}** → {row.copy}")
    if not reward:
        st.caption("No reward model: the chosen copy is the first candidate that passed every filter (the score column stays empty).")
    st.dataframe(df, hide_index=True, column_config={"copy": st.column_config.TextColumn(width="large")})

st.divider()
st.header("Batch job")
st.caption("Copy for many items in the background (`recsage push generate`): resumable, keeps running if you leave the page; "
           "launching again resumes where it stopped.")
job_dir = push_job_dir()
b1, b2, b3 = st.columns(3)
limit = b1.number_input("Items (catalogue order)", 1, 500, 5)
job_n = b2.number_input("Candidates per style", 1, 8, 2)
status = job_status(job_dir)
if b3.button("Launch batch job", disabled=status["running"] or not styles):
    try:
        start_push_job(bundled_items(), job_dir, styles=styles, n=int(job_n), max_chars=max_chars, limit=int(limit))
    except RecsageError as e:
        show_error(e)


@st.fragment(run_every=3)
def monitor() -> None:
    s = job_status(job_dir)
    if not s["exists"]:
        st.info("No batch job yet.")
        return
    state = "running" if s["running"] else ("finished" if s["finished"] else "stopped")
    st.progress(min(s["done"] / max(s["total"], 1), 1.0), text=f"{state}: {s['done']}/{s['total']} items, {s['failed']} failed, {s['elapsed']:.0f} s")
    if s["running"] and st.button("Stop job"):
        stop_job(job_dir)
    with st.expander("Job log"):
        st.code("\n".join(s["log_tail"]) or "(empty)")
    frame = job_results(job_dir)
    if len(frame):
        st.dataframe(frame[["item_id", "style", "status", "chosen", "chosen_score", "error"]], hide_index=True)
        st.download_button("Download results (CSV)", frame.to_csv(index=False), file_name="push_copy.csv", mime="text/csv")


monitor()
