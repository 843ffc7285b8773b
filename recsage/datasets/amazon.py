"""Amazon loaders: LETTER/TIGER-style leave-one-out folders and raw 2018 review files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.builders import RawInteraction, index_ids, interactions_table, items_table, users_table
from recsage.datasets.tables import Dataset
from recsage.datasets.tabular import decode_text, text_lines
from recsage.datasets.validation import ValidationReport, as_float, as_int, require

_SID_TOKEN = re.compile(r"^<([a-z])_(\d+)>$")


def read_json(path: Path, encoding: str = "utf-8") -> object:
    """One JSON document; undecodable bytes, bad JSON and absurd nesting name the file and line."""
    try:
        text = decode_text(path.read_bytes(), path, encoding)
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"invalid JSON ({e.msg})", file=str(path), record=f"line {e.lineno}") from None
    except RecursionError:
        raise InvalidInputError("JSON nested too deeply", file=str(path)) from None
    except FileNotFoundError:
        raise InvalidInputError("file not found", file=str(path)) from None


def _one(folder: Path, pattern: str, required: bool = True) -> Path | None:
    hits = sorted(folder.glob(pattern))
    if not hits:
        if required:
            raise InvalidInputError(f"no file matching '{pattern}'", file=str(folder))
        return None
    if len(hits) > 1:
        raise InvalidInputError(f"several files match '{pattern}': {[h.name for h in hits]}", file=str(folder))
    return hits[0]


def parse_sid_index(path: Path, item_ids: dict[str, int], report: ValidationReport) -> pd.DataFrame:
    """`{"item": ["<a_1>", "<b_2>", ...]}` → item_id, sid (list of ints, one per level)."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise InvalidInputError("expected a JSON object item -> token list", file=str(path))
    rows = []
    n_levels = None
    for key, tokens in raw.items():
        if key not in item_ids:
            report.reject(InvalidInputError(f"unknown item {key!r}", file=str(path), record=key, field="item"))
            continue
        if not isinstance(tokens, list) or not tokens:
            report.reject(InvalidInputError("expected a non-empty token list", file=str(path), record=key, field="sid"))
            continue
        codes = []
        for level, tok in enumerate(tokens):
            m = _SID_TOKEN.match(str(tok))
            if not m or ord(m.group(1)) - ord("a") != level:
                raise InvalidInputError(
                    f"token {tok!r} is not '<{chr(ord('a') + level)}_N>'", file=str(path), record=key, field=f"sid[{level}]"
                )
            codes.append(int(m.group(2)))
        if n_levels is None:
            n_levels = len(codes)
        elif len(codes) != n_levels:
            raise InvalidInputError(f"{len(codes)} levels, others have {n_levels}", file=str(path), record=key, field="sid")
        rows.append((item_ids[key], codes))
    missing = len(item_ids) - len(rows)
    if missing and not report.skip_bad:
        raise InvalidInputError(f"{missing} items have no semantic ID", file=str(path), field="item")
    rows.sort()
    return pd.DataFrame({"item_id": np.array([r[0] for r in rows], dtype=np.int64), "sid": [r[1] for r in rows]})


def load_amazon_loo(path: str | Path, *, report: ValidationReport | None = None, name: str | None = None, encoding: str = "utf-8") -> Dataset:
    """A LETTER-style folder: `<Name>.inter.json`, optional `<Name>.item.json` and SID indexes.

    Sequences are already chronological but carry no times, so `timestamp` is the position in the
    user's sequence (`meta.timestamp_kind = "order"`).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InvalidInputError("expected a folder with <Name>.inter.json", file=str(folder))
    report = report or ValidationReport()
    inter_path = _one(folder, "*.inter.json")
    stem = inter_path.name[: -len(".inter.json")]
    item_path = _one(folder, f"{stem}.item.json", required=False)
    raw_seqs = read_json(inter_path, encoding)
    if not isinstance(raw_seqs, dict):
        raise InvalidInputError("expected a JSON object user -> item list", file=str(inter_path))

    raw_items = read_json(item_path, encoding) if item_path else None
    item_rows = []
    if raw_items is not None:
        if not isinstance(raw_items, dict):
            raise InvalidInputError("expected a JSON object item -> fields", file=str(item_path))
        for key, fields in raw_items.items():
            if not isinstance(fields, dict):
                report.reject(InvalidInputError("expected an object", file=str(item_path), record=key))
                continue
            title = fields.get("title")
            try:
                require(title, file=str(item_path), record=key, field="title")
            except InvalidInputError as e:
                report.reject(e)
                continue
            cats = fields.get("categories") or ""
            cats = [c.strip() for c in cats.split(",") if c.strip()] if isinstance(cats, str) else list(cats)
            item_rows.append(
                {
                    "raw_id": str(key),
                    "title": str(title),
                    "description": str(fields.get("description") or ""),
                    "brand": str(fields.get("brand") or ""),
                    "categories": cats,
                }
            )

    rows: list[RawInteraction] = []
    seen_items: set[str] = set()
    for user, seq in raw_seqs.items():
        if not isinstance(seq, list) or not seq:
            report.reject(InvalidInputError("expected a non-empty item list", file=str(inter_path), record=f"user {user}", field="items"))
            continue
        for pos, it in enumerate(seq):
            try:
                item = str(as_int(it, file=str(inter_path), record=f"user {user}[{pos}]", field="item"))
            except InvalidInputError as e:
                report.reject(e)
                continue
            seen_items.add(item)
            rows.append(RawInteraction(str(user), item, pos, None, f"user {user}[{pos}]"))

    if raw_items is None:
        item_rows = [{"raw_id": i, "title": ""} for i in seen_items]
    item_map = index_ids(r["raw_id"] for r in item_rows)
    user_map = index_ids({r.user for r in rows})
    items = items_table(item_rows, item_map)
    interactions = interactions_table(
        rows, item_ids=item_map, user_ids=user_map, file=str(inter_path), report=report, ordered=True
    )

    sid_indexes = {}
    own_index = _one(folder, f"{stem}.index.json", required=False)
    if own_index:
        sid_indexes["published"] = parse_sid_index(own_index, item_map, report)
    for p in sorted(folder.glob(f"indexes/*/{stem}.index.json")):
        sid_indexes[p.parent.name] = parse_sid_index(p, item_map, report)

    return Dataset(
        name=name or stem.lower(),
        items=items,
        interactions=interactions,
        users=users_table(user_map),
        sid_indexes=sid_indexes,
        meta={
            "source": str(folder),
            "loader": "amazon-loo",
            "timestamp_kind": "order",
            "has_item_text": raw_items is not None,
            "validation": report.to_dict(),
        },
    )


def load_amazon_reviews(path: str | Path, *, report: ValidationReport | None = None, encoding: str = "utf-8") -> Dataset:
    """Amazon 2018 review JSON lines (optionally gzipped): ratings as interactions, reviews as comments.

    Exact duplicate rows (same user, item, time, rating and text) are a known artefact of these
    dumps; they are removed and counted in `meta["exact_duplicates_removed"]`.
    """
    path = Path(path)
    if path.is_dir():  # a shared-data folder: its one review file (.json/.jsonl, gzipped or not) beside SOURCE.md
        path = _one(path, "*.json*")
    report = report or ValidationReport()
    records = []
    seen = set()
    dupes = 0
    for lineno, line in text_lines(path, encoding):
        if not line.strip():
            continue
        try:
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as e:
                raise InvalidInputError(f"invalid JSON ({getattr(e, 'msg', 'nested too deeply')})", file=str(path), record=f"line {lineno}") from None
            rec = f"line {lineno}"
            if not isinstance(obj, dict):
                raise InvalidInputError("expected a JSON object", file=str(path), record=rec)
            user = str(require(obj.get("reviewerID"), file=str(path), record=rec, field="reviewerID"))
            item = str(require(obj.get("asin"), file=str(path), record=rec, field="asin"))
            ts = as_int(obj.get("unixReviewTime"), file=str(path), record=rec, field="unixReviewTime")
            rating = as_float(obj.get("overall"), file=str(path), record=rec, field="overall", lo=1, hi=5)  # Amazon stars
            votes = int(as_float(obj["vote"], file=str(path), record=rec, field="vote")) if obj.get("vote") else 0
        except InvalidInputError as e:
            report.reject(e)
            continue
        text = str(obj.get("reviewText") or "")
        key = (user, item, ts, rating, text)
        if key in seen:
            dupes += 1
            continue
        seen.add(key)
        records.append((user, item, ts, rating, votes, text, str(obj.get("summary") or ""), lineno))
    if not records:
        raise InvalidInputError("no valid reviews", file=str(path))
    item_map = index_ids({r[1] for r in records}, numeric=False)
    user_map = index_ids({r[0] for r in records}, numeric=False)
    items = items_table([{"raw_id": i, "title": ""} for i in item_map], item_map)
    inter = interactions_table(
        [RawInteraction(r[0], r[1], r[2], r[3], f"line {r[7]}") for r in records],
        item_ids=item_map, user_ids=user_map, file=str(path), report=report, ordered=False,
    )
    comments = pd.DataFrame(
        {
            "comment_id": [f"line{r[7]}" for r in records],
            "item_id": [item_map[r[1]] for r in records],
            "user": [r[0] for r in records],
            "parent_id": [None] * len(records),
            "text": [(r[6] + "\n" + r[5]).strip() for r in records],
            "likes": np.array([r[4] for r in records], dtype=np.int64),
            "created": np.array([r[2] for r in records], dtype=np.int64),
        }
    )
    return Dataset(
        name=path.name.split(".")[0].lower(),
        items=items,
        interactions=inter,
        users=users_table(user_map),
        comments=comments,
        meta={
            "source": str(path),
            "loader": "amazon-reviews",
            "timestamp_kind": "unix",
            "exact_duplicates_removed": dupes,
            "validation": report.to_dict(),
        },
    )
