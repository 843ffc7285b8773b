"""Schema-validated output from any backend.

Constrained decoding when the backend supports it; otherwise (and as a safety net) parse →
validate → a repair turn that shows the model its error → bounded retries. A record that still
fails comes back as a failure carrying the raw text; nothing is raised mid-batch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from recsage.llm.base import LLMBackend
from recsage.llm.errors import LLMError, TransientLLMError
from recsage.llm.types import Completion, GenerationParams, Message

T = TypeVar("T", bound=BaseModel)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


@dataclass
class StructuredResult(Generic[T]):
    value: T | None
    raw: str
    error: str | None = None
    attempts: int = 1
    completions: list[Completion] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.value is not None

    @property
    def tokens(self) -> int:
        return sum(c.prompt_tokens + c.completion_tokens for c in self.completions)


def extract_json(text: str) -> Any:
    """Accepts bare JSON, ```json fenced JSON, or JSON surrounded by chatter (first object)."""
    s = _FENCE.sub("", text.strip())
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        start = s.find("{")
        end = s.rfind("}")
        if start != -1 and end > start:
            return json.loads(s[start : end + 1])
        raise


def parse(text: str, schema: type[T] | dict[str, Any]) -> tuple[Any, str | None]:
    """Validated value (a pydantic instance, or a dict for a raw JSON schema) or the reason."""
    try:
        obj = extract_json(text)
    except json.JSONDecodeError as e:
        return None, f"is not valid JSON ({e.msg} at char {e.pos})"
    if isinstance(schema, dict):
        import jsonschema

        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            errs = "; ".join(f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5])
            return None, f"does not match the schema ({errs})"
        return obj, None
    try:
        return schema.model_validate(obj), None
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc'])) or '(root)'}: {x['msg']}" for x in e.errors()[:5])
        return None, f"does not match the schema ({errs})"


def answer_skeleton(js: dict[str, Any]) -> str:
    """`{"category": <string, at most 60 chars>, "topics": [<string>, … at most 4], …}` for an object
    schema: an instance-shaped description instead of the schema itself."""

    def shape(p: dict[str, Any]) -> str:
        t = p.get("type")
        if t == "array":
            limit = f", … at most {p['maxItems']}" if "maxItems" in p else ", …"
            return f"[{shape(p.get('items', {}))}{limit}]"
        notes = []
        if "maxLength" in p:
            notes.append(f"at most {p['maxLength']} chars")
        if "minimum" in p and "maximum" in p:
            notes.append(f"{p['minimum']}..{p['maximum']}")
        if "enum" in p:
            notes.append("one of " + ", ".join(map(str, p["enum"])))
        return f"<{t or 'value'}{', ' + ', '.join(notes) if notes else ''}>"

    props = js.get("properties")
    if js.get("type") != "object" or not props:
        return json.dumps(js)
    return "{" + ", ".join(f'"{k}": {shape(v)}' for k, v in props.items()) + "}"


def json_schema_of(schema: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    return schema if isinstance(schema, dict) else schema.model_json_schema()


def structured(
    backend: LLMBackend,
    conversations: Sequence[Sequence[Message]],
    schema: type[T] | dict[str, Any],
    params: GenerationParams | None = None,
    *,
    max_retries: int = 2,
    constrained: bool = True,
) -> list[StructuredResult[T]]:
    """One result per conversation; invalid answers get up to `max_retries` repair turns."""
    js = json_schema_of(schema) if (constrained and backend.supports_json_schema) else None
    convs = [list(c) for c in conversations]
    if js is None:  # no grammar: show the shape of the answer (small models echo a raw JSON schema back)
        hint = "\n\nReply with only a JSON object of this shape, no other text:\n" + answer_skeleton(json_schema_of(schema))
        convs = [c[:-1] + [{**c[-1], "content": c[-1]["content"] + hint}] if c else c for c in convs]
    results: list[StructuredResult[T] | None] = [None] * len(convs)
    pending = list(range(len(convs)))
    attempts = [0] * len(convs)
    history: list[list[Completion]] = [[] for _ in convs]
    while pending:
        try:
            outs = backend.chat([convs[i] for i in pending], params, json_schema=js)
        except TransientLLMError:
            raise  # the batch runner retries these with backoff
        except LLMError as e:
            for i in pending:
                results[i] = StructuredResult(None, "", f"backend error: {e}", attempts[i] + 1, history[i])
            break
        retry = []
        for i, comp in zip(pending, outs):
            attempts[i] += 1
            history[i].append(comp)
            value, err = parse(comp.text, schema)
            if value is not None:
                results[i] = StructuredResult(value, comp.text, None, attempts[i], history[i])
            elif attempts[i] > max_retries:
                results[i] = StructuredResult(None, comp.text, err, attempts[i], history[i])
            else:
                convs[i] = convs[i] + [
                    {"role": "assistant", "content": comp.text},
                    {
                        "role": "user",
                        "content": f"That answer {err}. Reply with only a JSON object of this shape, nothing else:\n"
                        + answer_skeleton(json_schema_of(schema)),
                    },
                ]
                retry.append(i)
        pending = retry
    return [r for r in results if r is not None]
