"""Ranking metrics as pure functions, and one `evaluate` that follows shared/PROTOCOLS.md."""

from recsage.evaluation.evaluate import evaluate
from recsage.evaluation.metrics import coverage, gini, hit_ranks, ndcg_at_k, recall_at_k, top_k

__all__ = ["coverage", "evaluate", "gini", "hit_ranks", "ndcg_at_k", "recall_at_k", "top_k"]
