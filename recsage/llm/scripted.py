"""A scripted backend for unit tests only: answers come from a function or a fixed list."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from recsage.llm.base import LLMBackend
from recsage.llm.types import Completion, Message


class ScriptedBackend(LLMBackend):
    """Replies with `responder(messages)`; counts calls so tests can assert cache behaviour."""

    name = "scripted"

    def __init__(self, responder: Callable[[Sequence[Message]], str] | Sequence[str], *, supports_json_schema: bool = False) -> None:
        if callable(responder):
            self._fn = responder
        else:
            replies = list(responder)
            self._fn = lambda _m: replies.pop(0) if replies else ""
        self.supports_json_schema = supports_json_schema
        self.calls = 0

    @property
    def model_id(self) -> str:
        return "scripted"

    def chat(self, conversations, params=None, json_schema=None) -> list[Completion]:
        out = []
        for conv in conversations:
            self.calls += 1
            text = self._fn(conv)
            out.append(Completion(text=text, prompt_tokens=sum(len(m["content"].split()) for m in conv), completion_tokens=len(text.split())))
        return out
