"""LangChain interop, both ways.

- `RecsageChatModel`: any recsage backend as a LangChain chat model, with tool binding so
  `with_structured_output(PydanticModel)` works (the schema is decoded with the backend's
  constrained JSON when it has one).
- `LangChainBackend`: any LangChain chat model as a recsage backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from recsage.llm.base import LLMBackend
from recsage.llm.errors import LLMError
from recsage.llm.structured import extract_json
from recsage.llm.types import Completion, GenerationParams, Message

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "user"}


def _to_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    return [{"role": _ROLES.get(m.type, "user"), "content": m.content if isinstance(m.content, str) else json.dumps(m.content)} for m in messages]


class RecsageChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Any
    max_tokens: int = 256
    temperature: float = 0.0

    @property
    def _llm_type(self) -> str:
        return f"recsage-{self.backend.name}"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        params = GenerationParams(max_tokens=self.max_tokens, temperature=self.temperature, stop=tuple(stop or ()))
        conv = _to_messages(messages)
        tools = kwargs.get("tools") or []
        if tools:
            fn = tools[0]["function"]
            schema = fn.get("parameters", {"type": "object"})
            conv = conv + [{"role": "user", "content": f"Answer with only a JSON object for `{fn['name']}` matching: {json.dumps(schema)}"}]
            comp = self.backend.chat([conv], params, json_schema=schema if self.backend.supports_json_schema else None)[0]
            try:
                args = extract_json(comp.text)
            except json.JSONDecodeError as e:
                raise LLMError(f"model did not return JSON for tool {fn['name']}: {e.msg}; raw: {comp.text[:200]}") from None
            msg = AIMessage(content="", tool_calls=[{"name": fn["name"], "args": args, "id": "call_0", "type": "tool_call"}])
        else:
            comp = self.backend.chat([conv], params)[0]
            msg = AIMessage(content=comp.text)
        msg.usage_metadata = {"input_tokens": comp.prompt_tokens, "output_tokens": comp.completion_tokens, "total_tokens": comp.prompt_tokens + comp.completion_tokens}
        return ChatResult(generations=[ChatGeneration(message=msg)])


class LangChainBackend(LLMBackend):
    """Wraps a LangChain chat model; schemas are passed as instructions (no constrained decoding)."""

    name = "langchain"

    def __init__(self, chat_model: BaseChatModel) -> None:
        self.chat_model = chat_model

    @property
    def model_id(self) -> str:
        return getattr(self.chat_model, "model_name", None) or type(self.chat_model).__name__

    def chat(self, conversations, params=None, json_schema=None) -> list[Completion]:
        out = []
        cls = {"user": HumanMessage, "assistant": AIMessage, "system": SystemMessage}
        for conv in conversations:
            msgs = [cls.get(m["role"], HumanMessage)(content=m["content"]) for m in conv]
            if json_schema is not None:
                msgs.append(HumanMessage(content=f"Reply with only JSON matching: {json.dumps(json_schema)}"))
            r = self.chat_model.invoke(msgs)
            usage = getattr(r, "usage_metadata", None) or {}
            out.append(Completion(text=str(r.content), prompt_tokens=usage.get("input_tokens", 0), completion_tokens=usage.get("output_tokens", 0)))
        return out
