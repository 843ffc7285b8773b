"""Canonical tables, one loader per source, validation and evaluation splits."""

from recsage.datasets.amazon import load_amazon_loo, load_amazon_reviews
from recsage.datasets.comments import load_reddit_comments, load_youtube_comments
from recsage.datasets.generic import ColumnMapping, load_generic
from recsage.datasets.movielens import load_movielens_1m, load_movielens_100k
from recsage.datasets.registry import LOADERS, load_dataset
from recsage.datasets.splits import QuerySet, SequenceSet, Split, chrono_split, given_split, leave_one_out
from recsage.datasets.tables import Dataset
from recsage.datasets.upworthy import load_upworthy
from recsage.datasets.validation import ValidationReport

__all__ = [
    "ColumnMapping", "Dataset", "LOADERS", "QuerySet", "SequenceSet", "Split", "ValidationReport",
    "chrono_split", "given_split", "leave_one_out", "load_amazon_loo", "load_amazon_reviews", "load_dataset", "load_generic",
    "load_movielens_1m", "load_movielens_100k", "load_reddit_comments", "load_upworthy", "load_youtube_comments",
]
