"""Service functions wiring the layers for real tasks: what the CLI, workbench and benchmarks call."""

from recsage.pipelines.data import data_info, make_split, prepare_dataset
from recsage.pipelines.demo import run_demo
from recsage.pipelines.recommend import evaluate_recommender, fit_recommender

__all__ = ["data_info", "evaluate_recommender", "fit_recommender", "make_split", "prepare_dataset", "run_demo"]
