"""Any CSV / JSONL / Parquet interaction log (and optional item table) via a column mapping."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.builders import RawInteraction, index_ids, interactions_table, items_table, users_table
from recsage.datasets.tables import Dataset
from recsage.datasets.tabular import read_table, record_label, require_columns
from recsage.datasets.validation import ValidationReport, as_float, as_int, check_unique, require


SPLIT_LABELS = ("train", "valid", "test")


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column holds each canonical field; `None` = absent."""

    user: str = "user_id"
    item: str = "item_id"
    timestamp: str | None = "timestamp"
    rating: str | None = None
    title: str = "title"
    description: str | None = None
    brand: str | None = None
    categories: str | None = None
    categories_sep: str = ","
    split: str | None = None  # a column labelling each row train / valid / test: your own split, kept as the "given" protocol

    @classmethod
    def parse(cls, spec: str | None) -> ColumnMapping:
        """`"user=uid,item=sku,timestamp=ts"` as typed on the command line."""
        if not spec:
            return cls()
        kwargs = {}
        for part in spec.split(","):
            if "=" not in part:
                raise InvalidInputError(f"mapping entry {part!r} is not field=column", field="mapping")
            k, v = (s.strip() for s in part.split("=", 1))
            if k not in cls.__dataclass_fields__:
                raise InvalidInputError(f"unknown field {k!r}; known: {sorted(cls.__dataclass_fields__)}", field="mapping")
            kwargs[k] = v or None
        return cls(**kwargs)


def load_generic(
    interactions: str | Path,
    items: str | Path | None = None,
    *,
    mapping: ColumnMapping | None = None,
    order: str = "timestamp",
    report: ValidationReport | None = None,
    name: str = "generic",
    encoding: str = "utf-8",
) -> Dataset:
    """`order="timestamp"` sorts each user's rows by time; `order="file"` says the file already is
    in sequence order, so a timestamp going backwards is reported as an error instead of re-sorted."""
    if order not in ("timestamp", "file"):
        raise InvalidInputError(f"order must be 'timestamp' or 'file', got {order!r}", field="order")
    m = mapping or ColumnMapping()
    report = report or ValidationReport()
    ifile = str(interactions)
    df = read_table(interactions, encoding)
    require_columns(df, [c for c in (m.user, m.item, m.timestamp, m.rating, m.split) if c], file=ifile)

    rows = []
    for pos in range(len(df)):
        rec = record_label(df, pos)
        try:
            user = str(require(df[m.user].iat[pos], file=ifile, record=rec, field=m.user))
            item = str(require(df[m.item].iat[pos], file=ifile, record=rec, field=m.item))
            ts = as_int(df[m.timestamp].iat[pos], file=ifile, record=rec, field=m.timestamp) if m.timestamp else pos
            rating = as_float(df[m.rating].iat[pos], file=ifile, record=rec, field=m.rating) if m.rating else None
            label = str(df[m.split].iat[pos]).strip().lower() if m.split else None
            if label is not None and label not in SPLIT_LABELS:
                raise InvalidInputError(f"split label {df[m.split].iat[pos]!r} is not one of {', '.join(SPLIT_LABELS)}", file=ifile, record=rec, field=m.split)
        except InvalidInputError as e:
            report.reject(e)
            continue
        rows.append(RawInteraction(user, item, ts, rating, rec, label))

    if items is not None:
        tfile = str(items)
        it = read_table(items, encoding)
        require_columns(it, [c for c in (m.item, m.title, m.description, m.brand, m.categories) if c], file=tfile)
        keep = check_unique(it[m.item].astype(str).tolist(), [record_label(it, i) for i in range(len(it))], file=tfile, field=m.item, report=report)
        item_rows = []
        for pos in [i for i, k in enumerate(keep) if k]:
            rec = record_label(it, pos)
            try:
                title = require(it[m.title].iat[pos], file=tfile, record=rec, field=m.title)
            except InvalidInputError as e:
                report.reject(e)
                continue
            cats = it[m.categories].iat[pos] if m.categories else ""
            item_rows.append(
                {
                    "raw_id": str(it[m.item].iat[pos]),
                    "title": str(title),
                    "description": str(it[m.description].iat[pos]) if m.description and pd.notna(it[m.description].iat[pos]) else "",
                    "brand": str(it[m.brand].iat[pos]) if m.brand and pd.notna(it[m.brand].iat[pos]) else "",
                    "categories": [c.strip() for c in str(cats).split(m.categories_sep) if c.strip()] if pd.notna(cats) else [],
                }
            )
    else:
        item_rows = [{"raw_id": i, "title": ""} for i in {r.item for r in rows}]
    item_map = index_ids(r["raw_id"] for r in item_rows)
    user_map = index_ids({r.user for r in rows})
    inter = interactions_table(rows, item_ids=item_map, user_ids=user_map, file=ifile, report=report, ordered=order == "file")
    if inter.empty:
        raise InvalidInputError("no valid interactions", file=ifile)
    return Dataset(
        name=name,
        items=items_table(item_rows, item_map),
        interactions=inter,
        users=users_table(user_map),
        meta={"source": ifile, "items_source": str(items) if items else None, "loader": "generic",
              "timestamp_kind": "unix" if m.timestamp else "order", "validation": report.to_dict()},
    )
