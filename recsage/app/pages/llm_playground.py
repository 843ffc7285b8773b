import json

import streamlit as st

from recsage.app.components import show_error
from recsage.core.errors import RecsageError
from recsage.llm.registry import LLMConfig
from recsage.pipelines.llm import llm_generate

st.title("LLM playground")
st.caption("Runs on the embedded offline model by default; answers are cached.")
c1, c2 = st.columns(2)
backend = c1.selectbox("Backend", ["embedded", "openai"])
model = c2.text_input("Model", "small" if backend == "embedded" else "")
base_url = st.text_input("Base URL (openai backend)", "http://127.0.0.1:8000/v1") if backend == "openai" else None
prompt = st.text_area("Prompt", "Give three short topic tags for: Stanley Sharpshooter 1/2-inch staples, steel, 1000 count.")
schema_text = st.text_area("JSON schema (optional: output is constrained and validated)", "")
if st.button("Generate", type="primary"):
    try:
        with st.spinner("Generating…"):  # a bad schema is refused before the model runs
            res = llm_generate(prompt, schema_text=schema_text or None, config=LLMConfig.from_env(backend=backend, model=model or None, base_url=base_url))
        if "text" in res:
            st.text(res["text"])
        else:
            st.json(res["value"]) if res["ok"] else st.error(res["error"])
        st.caption(json.dumps({k: v for k, v in res.items() if k not in ("text", "value", "raw")}, default=str))
    except RecsageError as e:
        show_error(e)
