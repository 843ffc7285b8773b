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


def default_codes(n_items: int, levels: int) -> int:
    """Codes per digit for a catalogue of `n_items`: the smallest power of two (8–256) whose
    prefixes (all digits but the last) outnumber the items four times, so each prefix holds about
    one item and the last digit rarely has to break ties. 256 (the papers' value) from ~16k items
    up; a 1.7k-item catalogue gets 128, an 85-item one 32 — 256 codes there would leave most of
    every level's softmax without a single item."""
    if levels <= 1:
        return int(min(256, max(8, 2 ** int(np.ceil(np.log2(max(n_items, 2)))))))
    codes = 8
    while codes < 256 and codes ** (levels - 1) < 4 * n_items:
        codes *= 2
    return codes


def build_semantic_ids(
    dataset: Dataset,
    *,
    method: str = "rqkmeans",
    source: str = "text",
    levels: int = 3,
    codes: int | None = None,
    collision: str = "suffix",
    out: str | Path | None = None,
    vectors: np.ndarray | None = None,
    text_vectors: np.ndarray | None = None,
    seed: int = 0,
    **params: Any,
) -> tuple[SIDTable, dict[str, Any]]:
    """Fits a quantizer, resolves collisions, reports metrics; saves everything to `out`.
    `codes=None` chooses the codes per digit from the catalogue size (`default_codes`)."""
    codes_why = "set by you"
    if codes is None:
        codes = default_codes(dataset.n_items, levels)
        codes_why = f"smallest power of two with codes^{levels - 1} >= 4 x {dataset.n_items} items (8-256)"
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
    report.update({"method": method, "source": source, "codes": {"value": codes, "why": codes_why}, "collision": coll, "vector_seconds": round(t_vec, 2), "fit_seconds": round(fit_s, 2), "dataset": dataset.name})
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
