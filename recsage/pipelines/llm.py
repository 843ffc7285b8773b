"""LLM service functions for the CLI and workbench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsage.core.errors import InvalidInputError
from recsage.llm import GenerationParams, LLMCache, get_backend, structured
from recsage.llm.embedded import EMBEDDED_MODELS, cache_dir, is_installed
from recsage.llm.registry import LLMConfig


def output_schema(text: str, source: str) -> dict[str, Any]:
    """A user's JSON Schema for structured output, checked before any generation: valid JSON, a
    valid schema (Draft 2020-12, by the jsonschema library), an object at the top (the output is
    one JSON object), and every `$ref` local and resolvable. `source` names it in errors."""
    import jsonschema

    try:
        schema = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"invalid JSON ({e.msg})", file=source, record=f"line {e.lineno}") from None
    except RecursionError:
        raise InvalidInputError("JSON nested too deeply", file=source) from None
    if not isinstance(schema, dict):
        raise InvalidInputError(f"a JSON Schema is an object, got a JSON {type(schema).__name__}", file=source)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise InvalidInputError(f"not a valid JSON Schema: {e.message[:200]}", file=source, field=where) from None
    if schema.get("type") != "object":
        raise InvalidInputError(f'structured output is one JSON object: the schema\'s top level needs "type": "object", got {schema.get("type")!r}',
                                file=source, field="type")
    for ref in _refs(schema):
        if not ref.startswith("#"):
            raise InvalidInputError(f"$ref {ref!r}: only references inside the schema (#/...) are followed (nothing is fetched)", file=source, field="$ref")
        node: Any = schema
        for part in [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/") if p]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                raise InvalidInputError(f"$ref {ref!r} points to nothing in the schema", file=source, field="$ref")
    return schema


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def llm_generate(prompt: str, *, schema_path: str | Path | None = None, schema_text: str | None = None, config: LLMConfig | None = None,
                 max_tokens: int = 256, temperature: float = 0.0) -> dict[str, Any]:
    """One generation; with a schema (a file, or its text from the workbench) the output is
    constrained and validated, and the schema is refused before the model runs if it is bad."""
    if not prompt.strip():
        raise InvalidInputError("empty prompt", field="prompt")
    schema = None
    if schema_path:
        try:
            schema_text = Path(schema_path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInputError("file not found", file=str(schema_path)) from None
        except UnicodeDecodeError:
            raise InvalidInputError("not UTF-8 text", file=str(schema_path)) from None
        schema = output_schema(schema_text, str(schema_path))
    elif schema_text and schema_text.strip():
        schema = output_schema(schema_text, "the schema box")
    backend = get_backend(config=config or LLMConfig.from_env())
    params = GenerationParams(max_tokens=max_tokens, temperature=temperature)
    conv = [{"role": "user", "content": prompt}]
    try:
        if schema is not None:
            r = structured(backend, [conv], schema, params)[0]
            return {"ok": r.ok, "value": r.value, "raw": r.raw, "error": r.error, "attempts": r.attempts, "tokens": r.tokens, "backend": backend.info()}
        c = backend.chat([conv], params)[0]
        return {"ok": True, "text": c.text, "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "cached": c.cached, "seconds": round(c.seconds, 3), "backend": backend.info()}
    finally:
        backend.close()


def llm_info(config: LLMConfig | None = None) -> dict[str, Any]:
    cfg = config or LLMConfig.from_env()
    out: dict[str, Any] = {"config": cfg.to_dict(), "cache_dir": str(cache_dir())}
    out["embedded_models"] = [
        {"name": m.name, "description": m.description, "installed": is_installed(m.name), "size": m.size, "sha256": m.sha256, "licence": m.licence}
        for m in EMBEDDED_MODELS.values()
    ]
    backend = get_backend(config=cfg)
    out["backend"] = backend.info()
    backend.close()
    return out


def llm_cache(action: str, path: str | None = None) -> dict[str, Any]:
    cache = LLMCache(path)
    if action == "stats":
        return cache.stats()
    if action == "clear":
        return {"removed": cache.clear(), "path": str(cache.path)}
    raise InvalidInputError(f"unknown cache action {action!r}; known: stats, clear", field="action")
