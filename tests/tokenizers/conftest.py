import numpy as np
import pytest

from recsage.datasets import load_dataset


@pytest.fixture(scope="session")
def scientific(shared_data):
    return load_dataset("scientific", shared_data / "amazon-scientific")


@pytest.fixture(scope="session")
def sci_text_vectors(scientific, tmp_path_factory):
    """Real MiniLM embeddings of the first 600 Scientific items (title+brand+categories+desc)."""
    from recsage.llm import Embedder
    from recsage.tokenizers import item_text

    emb = Embedder(cache_path=tmp_path_factory.mktemp("emb") / "e.sqlite")
    return emb.embed(item_text(scientific.items.iloc[:600]))


@pytest.fixture
def synthetic_vectors():
    return np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
