import streamlit as st

from recsage.pipelines.explore import benchmark_results

st.title("Runs")
st.caption("Benchmark results committed under benchmarks/results/ (each row states its protocol).")
results = benchmark_results()
if not results:
    st.info("No benchmark results yet: run `make bench`.")
for name, df in results.items():
    st.subheader(name)
    st.dataframe(df, hide_index=True)
    metric_cols = [c for c in df.columns if c.startswith(("ndcg@", "recall@"))]
    if metric_cols and "method" in df.columns:
        st.bar_chart(df.dropna(subset=metric_cols[:1]), x="method", y=metric_cols[:2])
