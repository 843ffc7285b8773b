"""The OpenAI-compatible backend against a real llama.cpp server started on 127.0.0.1."""

import socket
import subprocess
import sys
import time

import httpx
import pytest
from pydantic import BaseModel

from recsage.llm import BatchJob, GenerationParams, LLMError, TransientLLMError, structured
from recsage.llm.openai_http import OpenAICompatibleBackend

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(small_gguf):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(small_gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_threads", "2", "--n_ctx", "2048", "--model_alias", "small"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not start")
    yield url
    proc.terminate()
    proc.wait(20)


class Answer(BaseModel):
    answer: int


def test_generate_and_structured(server):
    b = OpenAICompatibleBackend(server, "small", json_mode="json_object_schema")
    out = b.generate(["Say hello."], GenerationParams(max_tokens=12))[0]
    assert out.text and out.completion_tokens > 0
    r = structured(b, [[{"role": "user", "content": "What is 20 + 22?"}]], Answer, GenerationParams(max_tokens=20))[0]
    assert r.ok and r.attempts == 1


def test_batch_with_concurrency(server, tmp_path):
    b = OpenAICompatibleBackend(server, "small", json_mode="json_object_schema", max_concurrency=2)
    job = BatchJob(tmp_path / "j", lambda rec: {"text": b.generate([rec["p"]], GenerationParams(max_tokens=6))[0].text}, max_concurrency=2, progress=False)
    s = job.run([{"id": i, "p": f"Count to {i}."} for i in range(4)])
    assert s.new_ok == 4


def test_http_errors(server):
    with pytest.raises(LLMError, match="HTTP 404"):
        OpenAICompatibleBackend(server.replace("/v1", "/nope"), "small").generate(["hi"])
    with pytest.raises(TransientLLMError):
        OpenAICompatibleBackend(f"http://127.0.0.1:{free_port()}/v1", "small", timeout=2).generate(["hi"])
