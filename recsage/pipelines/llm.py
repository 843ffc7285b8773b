"""LLM service functions for the CLI and workbench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsage.core.errors import InvalidInputError
from recsage.llm import GenerationParams, LLMCache, get_backend, structured
from recsage.llm.embedded import EMBEDDED_MODELS, cache_dir, is_installed
from recsage.llm.registry import LLMConfig


def llm_generate(prompt: str, *, schema_path: str | Path | None = None, config: LLMConfig | None = None, max_tokens: int = 256, temperature: float = 0.0) -> dict[str, Any]:
    if not prompt.strip():
        raise InvalidInputError("empty prompt", field="prompt")
    schema = None
    if schema_path:
        try:
            schema = json.loads(Path(schema_path).read_text())
        except FileNotFoundError:
            raise InvalidInputError("file not found", file=str(schema_path)) from None
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"invalid JSON ({e.msg})", file=str(schema_path), record=f"line {e.lineno}") from None
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
