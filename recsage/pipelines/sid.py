"""Item vectors → Semantic IDs → saved codebook folder with a metrics report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsage.core.errors import InvalidInputError
from recsage.datasets import Dataset, leave_one_out
from recsage.llm import Embedder
from recsage.tokenizers import (
    SIDTable, codebook_report, collaborative_vectors, fuse_with_cooccurrence, item_fingerprint, item_text, make_quantizer, make_unique,
)

SOURCES = ("text", "cf", "fused")


def embed_items(dataset: Dataset, embedder: Embedder | None = None, *, progress: bool = False) -> np.ndarray:
    if dataset.items is None or len(dataset.items) == 0:
        raise InvalidInputError(f"dataset '{dataset.name}' has no items", field="items")
    return (embedder or Embedder()).embed(item_text(dataset.items), progress=progress)


def item_vectors(dataset: Dataset, source: str = "text", *, gamma: float = 0.5, cf_dim: int = 64, embedder: Embedder | None = None) -> np.ndarray:
    """`cf` and `fused` only use leave-one-out *training* sequences, so no test item leaks into codes."""
    if source not in SOURCES:
        raise InvalidInputError(f"unknown vector source {source!r}; known: {', '.join(SOURCES)}", field="source")
    if source == "text":
        return embed_items(dataset, embedder)
    train = leave_one_out(dataset).train.sequences
    if source == "cf":
        return collaborative_vectors(train, dataset.n_items, dim=cf_dim)
    return fuse_with_cooccurrence(embed_items(dataset, embedder), train, gamma=gamma)


def build_semantic_ids(
    dataset: Dataset,
    *,
    method: str = "rqkmeans",
    source: str = "text",
    levels: int = 3,
    codes: int = 256,
    collision: str = "suffix",
    out: str | Path | None = None,
    vectors: np.ndarray | None = None,
    text_vectors: np.ndarray | None = None,
    seed: int = 0,
    **params: Any,
) -> tuple[SIDTable, dict[str, Any]]:
    """Fits a quantizer, resolves collisions, reports metrics; saves everything to `out`."""
    t0 = time.perf_counter()
    x = vectors if vectors is not None else item_vectors(dataset, source)
    t_vec = time.perf_counter() - t0
    q = make_quantizer(method, n_levels=levels, n_codes=codes, seed=seed, **params)
    t = time.perf_counter()
    raw_codes = q.fit_transform(x)
    fit_s = time.perf_counter() - t
    candidates = q.candidate_last_codes(x, raw_codes, k=min(codes, 64)) if collision == "reassign" else None
    unique, coll = make_unique(raw_codes, collision, candidates)
    text_vecs = text_vectors if text_vectors is not None else (x if source == "text" else None)
    report = codebook_report(raw_codes, n_codes=codes, vectors=x, reconstruction=q.reconstruct(raw_codes), text_vectors=text_vecs)
    report.update({"method": method, "source": source, "collision": coll, "vector_seconds": round(t_vec, 2), "fit_seconds": round(fit_s, 2), "dataset": dataset.name})
    table = SIDTable(unique, fingerprint=item_fingerprint(dataset.items["raw_id"].tolist()), meta={"method": method, "source": source, "levels": levels, "codes": codes, "collision": collision})
    if out is not None:
        out = Path(out)
        table.save(out)
        q.save_pretrained(out / "quantizer")
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return table, report


def published_sid_table(dataset: Dataset, name: str) -> SIDTable:
    """A published index shipped with the data (e.g. LETTER's) as a SIDTable, collisions resolved by suffix."""
    if name not in dataset.sid_indexes:
        raise InvalidInputError(f"dataset '{dataset.name}' has no SID index '{name}'; known: {', '.join(sorted(dataset.sid_indexes)) or '(none)'}", field="sid")
    raw = SIDTable.from_index_frame(dataset.sid_indexes[name], dataset.n_items)
    codes, _ = make_unique(raw.codes, "suffix") if not raw.is_unique else (raw.codes, None)
    return SIDTable(codes, fingerprint=item_fingerprint(dataset.items["raw_id"].tolist()), meta={"method": f"published:{name}"})


def sid_stats(directory: str | Path) -> dict[str, Any]:
    d = Path(directory)
    table = SIDTable.load(d)
    rep = json.loads((d / "report.json").read_text()) if (d / "report.json").exists() else codebook_report(table.codes)
    rep["final"] = {"n_items": table.n_items, "n_levels": table.n_levels, "unique": table.is_unique, "example": {i: table.text(i) for i in range(min(3, table.n_items))}}
    return rep
