"""Shared benchmark plumbing: timing + peak memory, a printed table, results JSON."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SHARED = Path(os.environ.get("RECSAGE_SHARED_DATA", REPO.parent / "shared" / "data"))
# committed LLM-tag artifacts (README of each): `tagcf extract` writes item_tags.parquet only once
# every item is tagged, so its presence means the artifact is complete
LLM_TAGS = {"ml100k": RESULTS / "tagcf-ml100k-llm", "scientific": RESULTS / "tagcf-scientific-llm"}


def complete_llm_tags(key: str) -> Path | None:
    """The dataset's committed LLM-tag folder when every item is tagged, else None."""
    path = LLM_TAGS.get(key)
    return path if path is not None and (path / "item_tags.parquet").exists() else None


def rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def measure(row: dict):
    """Adds `seconds` and `peak_mb` (peak traced heap of the block, numpy/pandas included)."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        yield row
    finally:
        row["seconds"] = round(time.perf_counter() - t, 2)
        row["peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()


def print_table(rows: list[dict], columns: list[str], title: str = "") -> None:
    if title:
        print(f"\n{title}")
    widths = [max([len(c)] + [len(_fmt(r.get(c))) for r in rows]) for c in columns]  # an empty table prints its header
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"
    return "" if v is None else str(v)


def write_results(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(rows, indent=2, default=str))
    print(f"\nwrote {path.relative_to(REPO)}  (process max RSS {rss_mb():.0f} MB)")
    return path


def merge_results(rows: list[dict], others: str, key) -> list[dict]:
    """`rows` with the rows of the results files named in `others` (comma-separated: runs done in
    parallel, one file each) replacing any row with the same `key(row)`; the merged files are
    removed so a later merge cannot bring old rows back."""
    for name in filter(None, others.split(",")):
        path = RESULTS / f"{name}.json"
        new = json.loads(path.read_text())
        keys = {key(r) for r in new}
        rows = [r for r in rows if key(r) not in keys] + new
        path.unlink()
        print(f"merged {len(new)} rows of {path.relative_to(REPO)}")
    return rows


def require_shared() -> Path:
    if not SHARED.exists():
        sys.exit(f"real datasets not found at {SHARED}; set RECSAGE_SHARED_DATA")
    return SHARED
