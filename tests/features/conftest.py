"""Real MovieLens-100K prepared once per session, with a codebook and data-derived TagCF tags."""

import pytest


@pytest.fixture(scope="session")
def ml_prepared(shared_data, tmp_path_factory):
    from recsage.pipelines import prepare_dataset

    out = tmp_path_factory.mktemp("ml100k") / "prepared"
    prepare_dataset("movielens-100k", shared_data / "movielens-100k", out)
    return out


@pytest.fixture(scope="session")
def ml_signals(ml_prepared, tmp_path_factory):
    """(sid dir, tags dir): collaborative SIDs and genre/profile tags — no LLM, so it is fast."""
    from recsage.datasets import Dataset
    from recsage.pipelines.sid import build_semantic_ids
    from recsage.pipelines.tagcf import build_vocabularies, tag_items

    root = tmp_path_factory.mktemp("ml-signals")
    ds = Dataset.load(ml_prepared)
    build_semantic_ids(ds, method="rqkmeans", source="cf", levels=2, codes=16, collision="suffix", out=root / "sid")
    build_vocabularies(ds, root / "tags", extend=False)
    tag_items(ds, root / "tags", root / "tags", limit=0, progress=False)
    return root / "sid", root / "tags"


@pytest.fixture(scope="session")
def ml_features(ml_prepared, ml_signals, tmp_path_factory, embedder):
    from recsage.pipelines.features import build_features

    out = tmp_path_factory.mktemp("ml-features") / "features"
    sid, tags = ml_signals
    build_features(ml_prepared, out, sid=sid, tags=tags, embedder=embedder)
    return out
