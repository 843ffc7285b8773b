import numpy as np
import pytest

from recsage.core.errors import InvalidInputError
from recsage.llm import Embedder, FaissIndex

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return Embedder(cache_path=tmp_path_factory.mktemp("emb") / "e.sqlite")


def test_real_embeddings_neighbours_and_cache(embedder, shared_data):
    import json

    items = json.loads((shared_data / "amazon-scientific" / "Scientific.item.json").read_text())
    titles = [items[str(i)]["title"] for i in range(200)]
    v = embedder.embed(titles)
    assert v.shape == (200, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    # items 1 and 2 are both Stanley staples (SOURCE.md): each other's nearest neighbour
    idx = FaissIndex(v)
    ids, _ = idx.search(v[1], 2)
    assert ids[0].tolist() == [1, 2]
    before = embedder.n_computed
    again = embedder.embed(titles[:50])
    assert embedder.n_computed == before and np.allclose(again, v[:50])


def test_faiss_save_load_and_bad_input(tmp_path, embedder):
    v = embedder.embed(["drill", "hammer", "staples"])
    idx = FaissIndex(v, ids=np.array([10, 20, 30]))
    back = FaissIndex.load(idx.save(tmp_path / "ix"))
    assert back.search(v[2], 1)[0].tolist() == [[30]]
    v[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        FaissIndex(v)
    with pytest.raises(InvalidInputError, match="empty"):
        embedder.embed([])


def test_a_killed_pass_keeps_its_finished_chunks(tmp_path, shared_data):
    """Chunks are cached as they finish: a pass killed in its second chunk resumes after the first."""
    import json

    items = json.loads((shared_data / "amazon-scientific" / "Scientific.item.json").read_text())
    titles = [items[str(i)]["title"] for i in range(300, 340)]
    emb = Embedder(cache_path=tmp_path / "e.sqlite", chunk_size=16)
    model = emb._load()
    calls = {"n": 0}
    real_encode = model.encode

    def dying_encode(texts, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the kill, during the second chunk
        return real_encode(texts, **kw)

    model.encode = dying_encode
    with pytest.raises(KeyboardInterrupt):
        emb.embed(titles)
    model.encode = real_encode
    resumed = Embedder(cache_path=tmp_path / "e.sqlite", chunk_size=16)
    resumed._model = model
    v = resumed.embed(titles)
    assert resumed.n_cached == 16 and resumed.n_computed == len(set(titles)) - 16
    assert np.allclose(v, Embedder(cache_path=tmp_path / "fresh.sqlite").embed(titles), atol=1e-5)
