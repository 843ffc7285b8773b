"""Prompt tasks: a batch job's LLM work written as data, for engines that generate by themselves.

The local and actor engines call a component's own method, which owns its backend and repairs
invalid answers with extra turns. Ray's LLM stages (the vLLM engine stage on GPUs, the HTTP stage
in front of an OpenAI-compatible server) take rows of messages and return text, so a component
also says, as a `PromptTask`:

- `requests(record)`: what to generate (one or more chats, with the output schema); raises
  `InvalidInputError` for a record that cannot be prompted (it is then a failure, never sent);
- `finish(record, index, text)`: one generated text → one validated part (runs in the cluster,
  next to the generation); raises `RecsageError` when the text is unusable;
- `combine(record, parts)`: the parts → the job's result for the record (on the driver).

Same prompts, schema and validation as the component's own path, so greedy outputs agree; what
the processor path lacks is the repair turn (a failed record is re-run with `--retry-failed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from recsage.core.errors import RecsageError
from recsage.llm.structured import parse
from recsage.llm.types import GenerationParams, Message


@dataclass(frozen=True)
class ChatRequest:
    """One conversation to complete, under `json_schema` when given (constrained by the engine)."""

    messages: list[Message]
    json_schema: dict[str, Any] | None = None
    params: GenerationParams = field(default_factory=GenerationParams)


class PromptTask(Protocol):
    def requests(self, record: dict[str, Any]) -> list[ChatRequest]: ...

    def finish(self, record: dict[str, Any], index: int, text: str) -> Any: ...

    def combine(self, record: dict[str, Any], parts: list[Any]) -> dict[str, Any]: ...


def parse_or_fail(text: str, schema: dict[str, Any], *, prefix: str = "LLM output", raw_chars: int = 300) -> Any:
    """A generated text validated against `schema` — the one step every task's `finish` starts
    with — or a `RecsageError` "<prefix> <why>; raw output: <text>" (a failed record)."""
    value, err = parse(text, schema)
    if value is None:
        raise RecsageError(f"{prefix} {err}; raw output: {text[:raw_chars]!r}")
    return value


class SingleRequestTask:
    """The common case: one chat per record, and its one part is the result."""

    def combine(self, record: dict[str, Any], parts: list[Any]) -> dict[str, Any]:
        return parts[0]


class BuiltOnce:
    """A value built by `build()` on first use in each process and never pickled: Ray workers get
    the recipe (a model folder, a config), not a loaded model. `preset` supplies a value already
    built in this process."""

    def __init__(self, build: Any, preset: Any = None) -> None:
        self._build = build
        self._value = preset

    def get(self) -> Any:
        if self._value is None:
            self._value = self._build()
        return self._value

    def __getstate__(self) -> dict[str, Any]:
        return {"_build": self._build, "_value": None}
