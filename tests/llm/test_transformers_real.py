"""transformers backend on a real model: the embedded Qwen2.5-Coder-0.5B GGUF read by
transformers itself (dequantised to torch), no hub access. No grammar here, so structured
output goes through the answer-shape hint and the parse → validate → repair path."""

import json

import pytest
from pydantic import BaseModel, Field

from recsage.llm import GenerationParams, ModelFileError, PromptTemplate, get_backend, structured

pytestmark = pytest.mark.slow


class ProductTags(BaseModel):
    category: str
    topics: list[str] = Field(max_length=4)
    confidence: float = Field(ge=0, le=1)


@pytest.fixture(scope="module")
def hf_llm(small_gguf):
    import torch

    torch.set_num_threads(2)
    backend = get_backend("transformers", model=str(small_gguf.parent), options={"gguf_file": small_gguf.name}, cache=False)
    yield backend
    backend.close()


def test_generation_on_a_local_model(hf_llm):
    out = hf_llm.generate(["Name one primary colour. One word."], GenerationParams(max_tokens=8))
    assert out[0].text.strip()
    assert out[0].prompt_tokens > 5 and 0 < out[0].completion_tokens <= 8
    assert hf_llm.info()["backend"] == "transformers" and hf_llm.info()["json_schema"] is False


def test_structured_without_a_grammar_on_a_real_title(hf_llm, shared_data):
    items = json.loads((shared_data / "amazon-scientific" / "Scientific.item.json").read_text())
    tpl = PromptTemplate("test-tagger", "1", "You label products. Answer with JSON: category, up to 4 short topics, confidence 0..1.",
                         "Product title:\n{title}")
    r = structured(hf_llm, [tpl.render(title=items["0"]["title"])], ProductTags, GenerationParams(max_tokens=96), max_retries=1)[0]
    assert r.raw  # never raised mid-batch: a value, or a failure with the raw text and the reason
    assert r.ok, (r.error, r.raw)
    assert 1 <= r.attempts <= 2


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        get_backend("transformers", model=str(tmp_path / "nope"), cache=False).generate(["hi"])
