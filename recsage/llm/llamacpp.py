"""llama.cpp backend (llama-cpp-python): the embedded offline default.

JSON schemas become GBNF grammars, so structured calls always produce parseable JSON.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recsage.llm.base import LLMBackend
from recsage.llm.errors import LLMError, ModelFileError
from recsage.llm.types import Completion, GenerationParams, Message


def default_threads() -> int:
    """RECSAGE_LLM_THREADS when set (a Ray actor sets it to the CPUs it reserved), else every core
    we may use (llama.cpp itself defaults to 1 thread on this machine kind)."""
    if os.environ.get("RECSAGE_LLM_THREADS", "").isdigit() and int(os.environ["RECSAGE_LLM_THREADS"]) > 0:
        return int(os.environ["RECSAGE_LLM_THREADS"])
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class LlamaCppBackend(LLMBackend):
    name = "llamacpp"
    supports_json_schema = True

    def __init__(self, model_path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None, model_name: str | None = None, verbose: bool = False) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.model_name = model_name or self.model_path.stem
        self._verbose = verbose
        self._llm = None
        self._lock = threading.Lock()  # a Llama context is not thread-safe
        self.load_seconds = 0.0

    @property
    def model_id(self) -> str:
        return self.model_name

    def _model(self):
        if self._llm is None:
            if not self.model_path.exists():
                raise ModelFileError(f"model file not found: {self.model_path}")
            from llama_cpp import Llama

            t = time.perf_counter()
            try:
                self._llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    verbose=self._verbose,
                )
            except ValueError as e:  # llama.cpp reports unreadable/corrupt GGUF this way
                raise ModelFileError(f"cannot load {self.model_path}: {e}") from None
            self.load_seconds = time.perf_counter() - t
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self._model().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def chat(
        self,
        conversations: Sequence[Sequence[Message]],
        params: GenerationParams | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> list[Completion]:
        p = params or GenerationParams()
        llm = self._model()
        out = []
        for conv in conversations:
            kwargs: dict[str, Any] = dict(
                messages=list(conv),
                max_tokens=p.max_tokens,
                temperature=p.temperature,
                top_p=p.top_p,
                seed=p.seed,
                stop=list(p.stop) or None,
            )
            if json_schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
            t = time.perf_counter()
            with self._lock:
                try:
                    r = llm.create_chat_completion(**kwargs)
                except ValueError as e:
                    # e.g. "Requested tokens (5000) exceed context window of 4096"
                    raise LLMError(f"llama.cpp refused the request: {e}") from None
            choice = r["choices"][0]
            usage = r.get("usage", {})
            out.append(
                Completion(
                    text=choice["message"].get("content") or "",
                    prompt_tokens=usage.get("prompt_tokens", 0),
                    completion_tokens=usage.get("completion_tokens", 0),
                    finish_reason=choice.get("finish_reason") or "stop",
                    seconds=time.perf_counter() - t,
                )
            )
        return out

    def info(self) -> dict[str, Any]:
        return {**super().info(), "path": str(self.model_path), "n_ctx": self.n_ctx, "threads": self.n_threads}

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
