import streamlit as st

from recsage.pipelines.explore import benchmark_metric_frames, benchmark_results

st.title("Runs")
st.caption("Benchmark results committed under benchmarks/results/ (each row states its protocol).")
results = benchmark_results()
if not results:
    st.info("No benchmark results yet: run `make bench`.")
for name, df in results.items():
    st.subheader(name)
    st.dataframe(df, hide_index=True)
    for metric, frame in benchmark_metric_frames(df).items():  # one metric per chart, a bar per dataset · method
        st.caption(f"{metric}: mean over seeds, one bar per dataset · method")
        st.bar_chart(frame, x="label", y=metric, horizontal=True, height=max(160, 28 * len(frame)))
