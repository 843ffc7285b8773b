"""Prepare, describe and split datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recsage.core.errors import InvalidInputError
from recsage.datasets import ColumnMapping, Dataset, Split, chrono_split, given_split, leave_one_out, load_dataset, load_generic
from recsage.datasets.tabular import read_table
from recsage.datasets.validation import ValidationReport

PROTOCOLS = ("loo", "chrono811", "given")  # given: the source's own split column (generic --mapping ...,split=COL)


def prepare_dataset(
    kind: str,
    src: str | Path,
    out: str | Path,
    *,
    skip_bad: bool = False,
    items: str | Path | None = None,
    mapping: str | None = None,
    order: str = "timestamp",
    splits: bool = True,
    encoding: str | None = None,
) -> dict[str, Any]:
    """Loads a source, validates it, writes Parquet tables + `summary.json` (+ splits when possible).

    With `skip_bad`, rejected rows are counted in `validation_report.json` instead of failing.
    """
    if kind == "generic":
        report = ValidationReport(skip_bad=skip_bad)
        ds = load_generic(src, items, mapping=ColumnMapping.parse(mapping), order=order, report=report, encoding=encoding or "utf-8")
    else:
        ds = load_dataset(kind, src, skip_bad=skip_bad, encoding=encoding)
    out = Path(out)
    ds.save(out)
    summary = ds.summary()
    summary["splits"] = {}
    if splits and ds.interactions is not None and len(ds.interactions):
        for protocol in PROTOCOLS:
            try:
                sp = make_split(ds, protocol)
            except InvalidInputError as e:
                summary["splits"][protocol] = f"not available: {e.reason}"
                continue
            sp.save(out / "splits" / f"{protocol}.parquet")
            summary["splits"][protocol] = sp.describe()
    summary["validation"] = ds.meta.get("validation", {})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "validation_report.json").write_text(json.dumps(ds.meta.get("validation", {}), indent=2, default=str))
    return summary


def make_split(dataset: Dataset, protocol: str, max_history: int | None = None) -> Split:
    if protocol == "loo":
        return leave_one_out(dataset, max_history=max_history)
    if protocol == "chrono811":
        return chrono_split(dataset, max_history=max_history or 10)
    if protocol == "given":
        return given_split(dataset)
    raise InvalidInputError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}", field="protocol")


def load_split(prepared: str | Path, protocol: str) -> tuple[Dataset, Split]:
    """A prepared dataset folder and its stored split (made on the fly if it was not stored)."""
    ds = Dataset.load(prepared)
    path = Path(prepared) / "splits" / f"{protocol}.parquet"
    return ds, (Split.load(path) if path.exists() else make_split(ds, protocol))


def data_info(path: str | Path) -> dict[str, Any]:
    """Describes a prepared dataset folder, or any CSV/JSONL/Parquet table."""
    path = Path(path)
    if (path / "dataset.json").exists():
        ds = Dataset.load(path)
        info = ds.summary()
        info["meta"] = {k: v for k, v in ds.meta.items() if k != "validation"}
        info["validation"] = ds.meta.get("validation", {})
        for t in ("items", "interactions", "users", "comments", "experiments"):
            df = getattr(ds, t)
            if df is not None:
                info[f"{t}.columns"] = list(df.columns)
        if ds.interactions is not None and len(ds.interactions):
            lengths = ds.interactions.groupby("user_id").size()
            info["sequence_length"] = {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 2), "max": int(lengths.max())}
        return info
    if path.is_file():
        df = read_table(path)
        return {"file": str(path), "rows": len(df), "columns": [c for c in df.columns if c != "__line__"]}
    raise InvalidInputError("neither a prepared dataset folder (dataset.json) nor a table file", file=str(path))
