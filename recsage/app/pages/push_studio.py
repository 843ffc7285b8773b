import streamlit as st

from recsage.app.components import push_preview, show_error, style_names
from recsage.core.errors import RecsageError

st.title("Push studio")
st.caption("N candidates per style from the LLM → length/banned/faithfulness/duplicate filters → reward-model ranking.")
text = st.text_area("Item text", "Digital pH meter with 0.01 resolution and automatic temperature compensation, for labs, pools and hydroponics.")
c1, c2, c3 = st.columns(3)
styles = c1.multiselect("Styles", style_names(), default=["question", "benefit_led"])
n = c2.slider("Candidates per style", 1, 8, 3)
max_chars = c3.slider("Max characters", 30, 140, 90)
banned = st.text_input("Banned words (comma-separated)", "free, guaranteed")
reward = st.text_input("Reward model folder (optional; from `recsage push train-reward`)", "")
if st.button("Generate", type="primary"):
    try:
        df = push_preview(text, styles, n=n, max_chars=max_chars, banned=tuple(w.strip() for w in banned.split(",") if w.strip()), reward_dir=reward or None)
    except RecsageError as e:
        show_error(e)
        st.stop()
    chosen = df[df["chosen"]]
    for row in chosen.itertuples():
        st.success(f"**{row.style}** → {row.copy}")
    st.dataframe(df, hide_index=True)
