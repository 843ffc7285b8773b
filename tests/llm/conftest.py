import pytest

from recsage.llm.embedded import SMALL_MODEL, ensure_gguf
from recsage.llm.llamacpp import LlamaCppBackend


@pytest.fixture(scope="session")
def small_gguf():
    return ensure_gguf(SMALL_MODEL)


@pytest.fixture(scope="session")
def small_llm(small_gguf):
    backend = LlamaCppBackend(small_gguf, n_ctx=2048, model_name=SMALL_MODEL)
    yield backend
    backend.close()
