"""SQLite response cache: re-runs and resumed jobs skip calls that already finished.

Keyed by (backend, model, messages, params, schema). WAL mode + busy timeout make it safe for
several processes writing at once (parallel batch jobs, the workbench and a CLI run).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recsage.llm.base import LLMBackend
from recsage.llm.embedded import cache_dir
from recsage.llm.types import Completion, GenerationParams, Message


def default_cache_path() -> Path:
    return cache_dir() / "llm_cache.sqlite"


class LLMCache:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as c:
            c.execute(
                "CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, backend TEXT, model TEXT, "
                "created REAL, response TEXT)"
            )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @staticmethod
    def key(backend: str, model: str, messages: Sequence[Message], params: GenerationParams, schema: dict | None) -> str:
        blob = json.dumps(
            {"b": backend, "m": model, "msg": list(messages), "p": params.to_dict(), "s": schema},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        out = {}
        conn = self._conn()
        for lo in range(0, len(keys), 500):
            chunk = keys[lo : lo + 500]
            q = f"SELECT key, response FROM completions WHERE key IN ({','.join('?' * len(chunk))})"
            for k, resp in conn.execute(q, chunk):
                out[k] = Completion(**{**json.loads(resp), "cached": True, "seconds": 0.0})
        return out

    def put_many(self, rows: list[tuple[str, str, str, Completion]]) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?)",
                [(k, b, m, time.time(), json.dumps(c.to_dict())) for k, b, m, c in rows],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def stats(self) -> dict[str, Any]:
        conn = self._conn()
        n, = conn.execute("SELECT COUNT(*) FROM completions").fetchone()
        per_model = conn.execute("SELECT backend, model, COUNT(*) FROM completions GROUP BY backend, model").fetchall()
        return {
            "path": str(self.path),
            "entries": n,
            "bytes": self.path.stat().st_size if self.path.exists() else 0,
            "by_model": [{"backend": b, "model": m, "entries": c} for b, m, c in per_model],
        }

    def clear(self) -> int:
        conn = self._conn()
        n, = conn.execute("SELECT COUNT(*) FROM completions").fetchone()
        conn.execute("DELETE FROM completions")
        conn.execute("VACUUM")
        return n


class CachedBackend(LLMBackend):
    """Wraps any backend; only cache misses reach the model."""

    def __init__(self, inner: LLMBackend, cache: LLMCache | None = None) -> None:
        self.inner = inner
        self.cache = cache or LLMCache()
        self.name = inner.name
        self.supports_json_schema = inner.supports_json_schema
        self.max_concurrency = inner.max_concurrency
        self.hits = 0
        self.misses = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def chat(self, conversations, params=None, json_schema=None) -> list[Completion]:
        p = params or GenerationParams()
        keys = [LLMCache.key(self.inner.name, self.inner.model_id, c, p, json_schema) for c in conversations]
        found = self.cache.get_many(list(set(keys)))
        miss_idx = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(keys) - len(miss_idx)
        self.misses += len(miss_idx)
        # misses go to the model in chunks of its concurrency and are stored as each chunk
        # finishes, so a kill in the middle of a long call list keeps everything already answered
        step = max(1, self.inner.max_concurrency)
        for lo in range(0, len(miss_idx), step):
            chunk = [i for i in miss_idx[lo : lo + step] if keys[i] not in found]  # duplicates within a call
            if not chunk:
                continue
            fresh = self.inner.chat([conversations[i] for i in chunk], p, json_schema)
            self.cache.put_many([(keys[i], self.inner.name, self.inner.model_id, c) for i, c in zip(chunk, fresh)])
            for i, c in zip(chunk, fresh):
                found[keys[i]] = c
        return [found[k] for k in keys]

    def info(self) -> dict[str, Any]:
        return {**self.inner.info(), "cache": str(self.cache.path)}

    def close(self) -> None:
        self.inner.close()
