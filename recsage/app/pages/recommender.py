import streamlit as st

from recsage.app.components import ranker_explanation, recommendations, saved_models, show_error, thinking_explanation, workspace
from recsage.core.errors import RecsageError

st.title("Recommender playground")
root = workspace()
prepared = str(root / "scientific")
c1, c2 = st.columns([1, 3])
user = c1.number_input("User id", min_value=0, value=0, step=1)
k = c1.slider("Top-K", 5, 20, 10)
trained = saved_models(prepared)
options = ["popularity", "itemknn"] + list(trained)
chosen = c2.multiselect("Models (baselines, and trained models found in the workspace or the demo output)", options,
                        default=["popularity", "itemknn"] + list(trained)[:2])
if not trained:
    c2.caption("No trained models for this dataset yet: `make demo` trains SASRec and a generative SID model on it, or `recsage train … --out`.")
if chosen:
    methods = tuple(m for m in chosen if m in ("popularity", "itemknn"))
    dirs = tuple(trained[m] for m in chosen if m in trained)
    try:
        res = recommendations(prepared, int(user), methods, k, dirs)
    except RecsageError as e:
        show_error(e)
        st.stop()
    st.subheader("History (leave-one-out test input)")
    st.dataframe(res["history"], hide_index=True)
    if res["held_out"]:
        st.caption(f"Held-out next item: {res['held_out']['title']} (id {res['held_out']['item_id']})")
    st.subheader("This user's result per model")
    st.dataframe(res["summary"], hide_index=True)
    columns = {"rank": st.column_config.NumberColumn(width="small"), "hit": st.column_config.TextColumn(width="small"),
               "title": st.column_config.TextColumn(width="large", help="hover a cell for the whole title"),
               "score": st.column_config.NumberColumn(width="small", format="%.4f")}
    for tab, name in zip(st.tabs(chosen), chosen):  # one full-width table per model: the score column stays on screen
        frame = res["models"][trained.get(name, name)][["rank", "hit", "title", "score"]]
        tab.dataframe(frame.style.apply(lambda row: ["background-color: #d4edda" if row["hit"] else "" for _ in row], axis=1),
                      hide_index=True, width="stretch", column_config=columns)
    rankers = [m for m in chosen if m.startswith("two-stage:")]
    for name in rankers:
        st.subheader(f"Why these items — {name}")
        try:
            ex = ranker_explanation(trained[name], prepared, int(user), k)
        except RecsageError as e:
            show_error(e)
            continue
        st.caption("Each row: the three features that moved the ranker's score most (LightGBM pred_contrib). "
                   "The chart sums every feature group's contribution per item.")
        st.dataframe(ex["table"], hide_index=True, width="stretch",
                     column_config={"title": st.column_config.TextColumn(width="large"), "why": st.column_config.TextColumn(width="large")})
        st.bar_chart(ex["contributions"], x="item", y="contribution", color="group", horizontal=True)
    for name in [m for m in chosen if m.startswith("thinking:")]:
        st.subheader(f"Chain of thought — {name}")
        try:
            ex = thinking_explanation(trained[name], prepared, int(user), k)
        except RecsageError as e:
            show_error(e)
            continue
        if ex["chain"] is None:
            st.caption("No history to reason over: the model falls back to popular items.")
            continue
        st.caption("Interests, counts and dynamics are derived from the history (checkable); the deduction is the one the model wrote "
                   f"before decoding its items. Wording: {ex['text_status']}.")
        st.dataframe(ex["chain_table"], hide_index=True, width="stretch")
        for part, text in ex["text"].items():  # catalogue text: shown as text, never rendered as markdown
            st.markdown(f"**{part}**")
            st.text(text)
        st.markdown("**The model's deduction** (the next item serves):")
        st.text(ex["deduction"])
