"""Named loaders for `recsage data prepare KIND` and the workbench."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recsage.core.registry import Registry
from recsage.datasets.amazon import load_amazon_loo, load_amazon_reviews
from recsage.datasets.comments import load_reddit_comments, load_youtube_comments
from recsage.datasets.movielens import load_movielens_1m, load_movielens_100k
from recsage.datasets.tables import Dataset
from recsage.datasets.upworthy import load_upworthy
from recsage.datasets.validation import ValidationReport

LOADERS: Registry[Callable[..., Dataset]] = Registry("dataset loader")
LOADERS.register("amazon")(load_amazon_loo)  # any LETTER-style folder
LOADERS.register("beauty")(load_amazon_loo)
LOADERS.register("scientific")(load_amazon_loo)
LOADERS.register("amazon-reviews")(load_amazon_reviews)
LOADERS.register("movielens")(load_movielens_100k)
LOADERS.register("movielens-100k")(load_movielens_100k)
LOADERS.register("movielens-1m")(load_movielens_1m)
LOADERS.register("upworthy")(load_upworthy)
LOADERS.register("reddit")(load_reddit_comments)
LOADERS.register("youtube")(load_youtube_comments)


def load_dataset(kind: str, path: str | Path, *, skip_bad: bool = False, encoding: str | None = None) -> Dataset:
    """Loads a source folder/file with the named loader; `skip_bad` counts bad rows instead of failing;
    `encoding` overrides the format's own text encoding (every loader takes it)."""
    loader = LOADERS.get(kind)
    report = ValidationReport(skip_bad=skip_bad)
    ds = loader(path, report=report, **({"encoding": encoding} if encoding else {}))
    ds.meta["validation"] = report.to_dict()
    return ds
