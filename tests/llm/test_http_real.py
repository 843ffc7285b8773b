"""The OpenAI-compatible backend against a real llama.cpp server started on 127.0.0.1."""


import pytest
from pydantic import BaseModel

from recsage.llm import BatchJob, GenerationParams, LLMError, TransientLLMError, structured
from recsage.llm.openai_http import OpenAICompatibleBackend

pytestmark = pytest.mark.slow


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


def test_http_errors(server, unused_port):
    with pytest.raises(LLMError, match="HTTP 404"):
        OpenAICompatibleBackend(server.replace("/v1", "/nope"), "small").generate(["hi"])
    with pytest.raises(TransientLLMError):
        OpenAICompatibleBackend(f"http://127.0.0.1:{unused_port}/v1", "small", timeout=2).generate(["hi"])
