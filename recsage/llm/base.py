"""The one interface every LLM backend implements.

Backends do only inference; structured output, caching, retries and batching are layered on top
(`structured.py`, `cache.py`, `batch.py`) so every backend gets them the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from recsage.llm.types import Completion, GenerationParams, Message


class LLMBackend(ABC):
    """`chat` is the primitive; `generate` wraps raw prompts as single user turns."""

    name: str = "base"
    #: True when `chat(..., json_schema=...)` constrains decoding to the schema (grammar/guided).
    supports_json_schema: bool = False
    #: How many requests may run at once (HTTP backends > 1; local engines batch internally).
    max_concurrency: int = 1

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Identifies the weights (file hash, HF dir, or server model name) for cache keys."""

    @abstractmethod
    def chat(
        self,
        conversations: Sequence[Sequence[Message]],
        params: GenerationParams | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> list[Completion]:
        """One completion per conversation."""

    def generate(self, prompts: Sequence[str], params: GenerationParams | None = None) -> list[Completion]:
        return self.chat([[{"role": "user", "content": p}] for p in prompts], params)

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id, "json_schema": self.supports_json_schema}

    def close(self) -> None:
        """Release the model or connections (no-op by default)."""
