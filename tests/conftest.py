import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RECSAGE_CACHE", str(Path(__file__).resolve().parents[1] / ".recsage" / "test-cache"))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECSAGE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (set RECSAGE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_data() -> Path:
    return REPO / "data"


@pytest.fixture(scope="session")
def small_gguf():
    from recsage.llm.embedded import SMALL_MODEL, ensure_gguf

    return ensure_gguf(SMALL_MODEL)


@pytest.fixture(scope="session")
def small_llm(small_gguf):
    from recsage.llm.embedded import SMALL_MODEL
    from recsage.llm.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(small_gguf, n_ctx=2048, model_name=SMALL_MODEL)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def embedder():
    from recsage.llm.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def ml100k(shared_data):
    from recsage.datasets.registry import load_dataset

    return load_dataset("movielens-100k", shared_data / "movielens-100k")
