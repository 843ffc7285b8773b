"""LLM fixtures live in tests/conftest.py (shared with knowledge/ and generation/ tests); the
llama.cpp server that the HTTP tests talk to lives here."""

import sys

import pytest


@pytest.fixture(scope="module")
def server(small_gguf, launch_server):
    """The embedded 0.5B behind llama.cpp's OpenAI-compatible server on 127.0.0.1 (base URL .../v1)."""
    base = launch_server(lambda port: [sys.executable, "-m", "llama_cpp.server", "--model", str(small_gguf), "--host", "127.0.0.1",
                                       "--port", str(port), "--n_threads", "2", "--n_ctx", "2048", "--model_alias", "small"],
                         "/v1/models", "llama.cpp server")
    return f"{base}/v1"
