"""A scripted OpenAI-compatible server for the CLI kill tests (tests only: answers are made up).

The kill tests need real `recsage` processes killed with SIGKILL mid-job, many times, in seconds.
The real embedded model takes seconds per record, so the CLI is pointed (`--backend openai
--base-url …`) at this server, which answers every chat completion with a JSON instance of the
request's schema after a short delay — the same wire format llama.cpp's and vLLM's servers use.
The benchmark (`benchmarks/bench_reliability.py`) runs the same kills against the real model.

    python tests/_fake_openai.py PORT [DELAY_SECONDS]
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def instance(schema: dict[str, Any], root: dict[str, Any] | None = None, key: str = "") -> Any:
    """A deterministic value that satisfies `schema` (the subset recsage's components use)."""
    root = root if root is not None else schema
    schema = resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for combo in ("anyOf", "oneOf", "allOf"):
        if combo in schema:
            options = [o for o in schema[combo] if resolve(o, root).get("type") != "null"] or schema[combo]
            return instance(options[0], root, key)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: instance(v, root, k) for k, v in props.items()}
    if kind == "array":
        n = max(schema.get("minItems", 1), 1)
        n = min(n, schema.get("maxItems", n))
        items = schema.get("items", {"type": "string"})
        return [instance(items, root, f"{key}{i}") for i in range(n)]
    if kind == "string":
        text = f"A plain sentence about {key or 'the item'}."
        low, high = schema.get("minLength", 0), schema.get("maxLength", 10_000)
        return (text + " More." * low)[: max(high, 1)] if len(text) < low else text[:high]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return True
    return None


def answer(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema")
    return json.dumps(instance(schema)) if schema else "A plain answer."


def serve(port: int, delay: float) -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self._send({"object": "list", "data": [{"id": "fake", "object": "model"}]})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            time.sleep(delay)
            text = answer(body)
            self._send({"id": "fake", "object": "chat.completion", "model": "fake",
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.05)
