"""OpenAI-compatible HTTP backend: vLLM's server, llama.cpp's server, or any hosted endpoint."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from recsage.llm.base import LLMBackend
from recsage.llm.errors import LLMError, TransientLLMError
from recsage.llm.types import Completion, GenerationParams, Message

JSON_MODES = ("json_schema", "json_object_schema", "none")


def chat_body(model: str, conv: Sequence[Message], p: GenerationParams, json_schema: dict | None, json_mode: str) -> dict[str, Any]:
    """The `/chat/completions` request body (also what Ray's HTTP stage posts, see `ray_processor`)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": list(conv),
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "seed": p.seed,
    }
    if p.stop:
        body["stop"] = list(p.stop)
    if json_schema is not None and json_mode == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": json_schema, "strict": True}}
    elif json_schema is not None and json_mode == "json_object_schema":
        body["response_format"] = {"type": "json_object", "schema": json_schema}
    return body


def response_text(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The first choice's text and the choice itself; KeyError/IndexError/TypeError when the body is not a completion."""
    choice = data["choices"][0]
    return choice["message"].get("content") or "", choice


class OpenAICompatibleBackend(LLMBackend):
    """`json_mode` says how the server takes a schema: "json_schema" (OpenAI, vLLM),
    "json_object_schema" (llama.cpp server: `{"type": "json_object", "schema": …}`) or "none"."""

    name = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        json_mode: str = "json_schema",
        timeout: float = 120.0,
        max_concurrency: int = 4,
    ) -> None:
        self.base_url = (base_url or os.environ.get("RECSAGE_LLM_BASE_URL") or "http://127.0.0.1:8000/v1").rstrip("/")
        self.model = model or os.environ.get("RECSAGE_LLM_MODEL") or "default"
        self.api_key = api_key or os.environ.get("RECSAGE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "none"
        if json_mode not in JSON_MODES:
            raise LLMError(f"json_mode must be one of {JSON_MODES}, got {json_mode!r}")
        self.json_mode = json_mode
        self.supports_json_schema = json_mode != "none"
        self.max_concurrency = max_concurrency
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {self.api_key}"})

    @property
    def model_id(self) -> str:
        return f"{self.model}@{self.base_url}"

    def _one(self, conv: Sequence[Message], p: GenerationParams, json_schema: dict | None) -> Completion:
        body = chat_body(self.model, conv, p, json_schema, self.json_mode)
        url = f"{self.base_url}/chat/completions"
        t = time.perf_counter()
        try:
            r = self._client.post(url, json=body)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as e:
            raise TransientLLMError(f"{url}: {type(e).__name__}: {e}") from None
        if r.status_code == 429 or r.status_code >= 500:
            raise TransientLLMError(f"{url}: HTTP {r.status_code}: {r.text[:300]}")
        if r.status_code >= 400:
            raise LLMError(f"{url}: HTTP {r.status_code}: {r.text[:500]}")
        try:
            data = r.json()
            text, choice = response_text(data)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"{url}: unexpected response ({e}): {r.text[:300]}") from None
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            finish_reason=choice.get("finish_reason") or "stop",
            seconds=time.perf_counter() - t,
        )

    def chat(self, conversations, params=None, json_schema=None) -> list[Completion]:
        p = params or GenerationParams()
        if len(conversations) <= 1 or self.max_concurrency <= 1:
            return [self._one(c, p, json_schema) for c in conversations]
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(lambda c: self._one(c, p, json_schema), conversations))

    def info(self) -> dict[str, Any]:
        return {**super().info(), "base_url": self.base_url, "json_mode": self.json_mode, "concurrency": self.max_concurrency}

    def close(self) -> None:
        self._client.close()
