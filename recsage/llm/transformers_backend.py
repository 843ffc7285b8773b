"""transformers backend for any local Hugging Face model directory (no hub access)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from recsage.llm.base import LLMBackend
from recsage.llm.errors import LLMError, ModelFileError
from recsage.llm.types import Completion, GenerationParams


class TransformersBackend(LLMBackend):
    """Unconstrained decoding: structured output relies on parse → validate → repair."""

    name = "transformers"

    def __init__(self, model_dir: str | Path, *, gguf_file: str | None = None, max_context: int = 4096) -> None:
        self.model_dir = Path(model_dir)
        self.gguf_file = gguf_file
        self.max_context = max_context
        self._model = None
        self._tok = None

    @property
    def model_id(self) -> str:
        return str(self.model_dir / (self.gguf_file or ""))

    def _load(self):
        if self._model is None:
            if not self.model_dir.exists():
                raise ModelFileError(f"model directory not found: {self.model_dir}")
            from transformers import AutoModelForCausalLM, AutoTokenizer

            kw: dict[str, Any] = {"local_files_only": True}
            if self.gguf_file:
                kw["gguf_file"] = self.gguf_file
            try:
                self._tok = AutoTokenizer.from_pretrained(str(self.model_dir), **kw)
                self._model = AutoModelForCausalLM.from_pretrained(str(self.model_dir), **kw)
            except (OSError, ValueError) as e:
                raise ModelFileError(f"cannot load {self.model_dir}: {e}") from None
            self._model.eval()
        return self._model, self._tok

    def chat(self, conversations, params=None, json_schema=None) -> list[Completion]:
        import torch

        p = params or GenerationParams()
        model, tok = self._load()
        out = []
        for conv in conversations:
            t = time.perf_counter()
            ids = tok.apply_chat_template(list(conv), add_generation_prompt=True, return_tensors="pt", return_dict=True)
            n_prompt = ids["input_ids"].shape[1]
            if n_prompt + p.max_tokens > self.max_context:
                raise LLMError(f"prompt of {n_prompt} tokens + {p.max_tokens} new exceeds the context of {self.max_context}")
            torch.manual_seed(p.seed)
            gen_kw: dict[str, Any] = {"max_new_tokens": p.max_tokens, "do_sample": p.temperature > 0}
            if p.temperature > 0:
                gen_kw.update(temperature=p.temperature, top_p=p.top_p)
            with torch.no_grad():
                res = model.generate(**ids, **gen_kw)
            new = res[0, n_prompt:]
            text = tok.decode(new, skip_special_tokens=True)
            for s in p.stop:
                text = text.split(s)[0]
            out.append(Completion(text=text, prompt_tokens=n_prompt, completion_tokens=int(new.shape[0]), seconds=time.perf_counter() - t))
        return out
