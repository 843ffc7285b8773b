"""Streamlit workbench: thin pages over `recsage.pipelines`."""
