"""PushGen service functions: reward-model training on Upworthy, copy scoring, batch generation."""

from __future__ import annotations

import csv
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.registry import load_dataset
from recsage.datasets.tabular import iter_jsonl, text_lines
from recsage.generation.pushgen.filters import PushConstraints, reason_kind
from recsage.generation.pushgen.generator import PushCopyGenerator, PushTask
from recsage.generation.pushgen.pairs import balanced_orientation, build_pairs, split_pairs
from recsage.generation.pushgen.reward import REWARD_MODELS, load_reward_model
from recsage.generation.pushgen.styles import load_style_library
from recsage.llm.base import LLMBackend
from recsage.llm.batch import BatchJob, EngineConfig
from recsage.llm.registry import LLMConfig, backend_for, stage_for
from recsage.llm.tasks import BuiltOnce


def upworthy_pairs(path: str | Path) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Train/valid/test pairs split by test id; the test part is balanced by random orientation."""
    ds = load_dataset("upworthy", path)
    pairs, stats = build_pairs(ds.experiments)
    parts = split_pairs(pairs)
    parts["test"] = balanced_orientation(parts["test"])
    parts["valid"] = balanced_orientation(parts["valid"], seed=1)
    info = {**stats.to_dict(), **{f"{k}_pairs": len(v) for k, v in parts.items()}, **{f"{k}_significant": int(v["significant"].sum()) for k, v in parts.items()}}
    return parts, info


def train_reward_model(upworthy: str | Path, out: str | Path, *, model: str = "embedding-bt", **params: Any) -> dict[str, Any]:
    """Fit one reward model on Upworthy pairs, report held-out accuracy/AUC, save it."""
    parts, info = upworthy_pairs(upworthy)
    cls = REWARD_MODELS.get(model)
    rm = cls(_config_for(model, params)) if params else cls()
    t0 = time.perf_counter()
    rm.fit(parts["train"], parts["valid"])
    row = {"method": model, **rm.evaluate(parts["test"]), "train_seconds": round(time.perf_counter() - t0, 1), **info}
    if hasattr(rm, "save_pretrained"):
        rm.save_pretrained(out)
        (Path(out) / "metrics.json").write_text(json.dumps(row, indent=2))
    return row


def _config_for(model: str, params: dict[str, Any]):
    from recsage.generation.pushgen.reward import EmbeddingRewardConfig, FinetunedRewardConfig

    cfg = {"embedding-bt": EmbeddingRewardConfig, "finetuned-minilm": FinetunedRewardConfig}.get(model)
    if cfg is None:
        raise InvalidInputError(f"reward model {model!r} takes no parameters", field="model")
    return cfg.from_dict(params)


def score_copies(model_dir: str | Path, copies: list[str]) -> list[dict[str, Any]]:
    """Scores (higher = more clicks expected) for any list of copies, best first."""
    if not copies:
        raise InvalidInputError("no copies to score", field="copies")
    rm = load_reward_model(model_dir)
    scores = rm.score(copies)
    return sorted(({"copy": c, "score": round(float(s), 4)} for c, s in zip(copies, scores)), key=lambda r: -r["score"])


# ---------------- batch generation ----------------
def iter_items(path: str | Path, *, id_field: str = "item_id", text_fields: tuple[str, ...] = ("title", "description"),
               encoding: str = "utf-8") -> Iterator[dict[str, Any]]:
    """Streams {id, text} records from CSV, JSONL or Parquet; a malformed row raises an error
    naming the file and line; a row without text passes through with empty text (recorded as a
    failure by the job, not dropped); a file without any row is an error."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError("items file not found", file=str(path))
    first_seen: dict[str, str] = {}
    for where, rec in _item_rows(path, id_field, text_fields, encoding):
        if rec["id"] in first_seen:  # the job keys its resume on ids: a repeat would be silently merged
            raise InvalidInputError(f"duplicate item id {rec['id']!r} (first at {first_seen[rec['id']]})", file=str(path), record=where, field=id_field)
        first_seen[rec["id"]] = where
        yield rec
    if not first_seen:
        raise InvalidInputError("no items in the file", file=str(path))


def _item_rows(path: Path, id_field: str, text_fields: tuple[str, ...], encoding: str) -> Iterator[tuple[str, dict[str, Any]]]:

    def record(row: dict[str, Any], where: str) -> dict[str, Any]:
        if row.get(id_field) in (None, ""):
            raise InvalidInputError("missing item id", file=str(path), record=where, field=id_field)
        present = [f for f in text_fields if f in row]
        if not present:
            raise InvalidInputError(f"no text field (expected one of {list(text_fields)})", file=str(path), record=where, field=text_fields[0])
        text = "\n".join(str(row[f]) for f in present if row[f] is not None and str(row[f]).strip() and str(row[f]) != "nan")
        return {"id": str(row[id_field]), "text": text}

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        n = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
            for row in batch.to_pylist():
                n += 1
                yield f"row {n}", record(row, f"row {n}")
    elif path.name.lower().endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        for lineno, row in iter_jsonl(path, encoding):
            yield f"line {lineno}", record(row, f"line {lineno}")
    elif path.name.lower().endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
        lines = (line for _, line in text_lines(path, encoding))  # undecodable bytes name their line
        reader = csv.DictReader(lines, delimiter="\t" if ".tsv" in path.name.lower() else ",")
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise InvalidInputError(f"expected {len(reader.fieldnames or [])} fields", file=str(path), record=f"line {reader.line_num}")
            yield f"line {reader.line_num}", record(row, f"line {reader.line_num}")
    else:
        raise InvalidInputError("items file must be .csv, .tsv, .jsonl (optionally .gz) or .parquet", file=str(path))


def push_parts_dir(out: str | Path) -> Path:
    """Where a push batch keeps its resumable parts: next to its Parquet output."""
    return Path(str(out) + ".parts")


def generate_push_batch(
    items: str | Path,
    out: str | Path,
    *,
    styles: list[str],
    n: int = 8,
    constraints: PushConstraints | None = None,
    reward_dir: str | Path | None = None,
    library: str | Path | None = None,
    llm: LLMConfig | None = None,
    id_field: str = "item_id",
    text_fields: tuple[str, ...] = ("title", "description"),
    limit: int | None = None,
    progress: bool = True,
    backend: LLMBackend | None = None,
    engine: EngineConfig | None = None,
    encoding: str = "utf-8",
) -> dict[str, Any]:
    """Resumable batch: one finished item (all its styles) per JSONL line under `<out>.parts/`,
    then the whole output as Parquet at `out`. A kill loses at most the item in flight."""
    out = Path(out)
    lib = load_style_library(library)
    lib.select(styles)  # unknown/empty styles fail before any LLM call
    constraints = constraints or PushConstraints()
    engine = engine or EngineConfig()
    stage = stage_for(engine, llm) if backend is None else None  # a backend object given by the caller runs as is
    backend = backend or backend_for(engine, llm)
    reward = load_reward_model(reward_dir) if reward_dir else None  # a bad reward folder fails before any LLM call
    reward_name = str(reward_dir or "none")

    def build_generator(rm: Any) -> PushCopyGenerator:
        from recsage.llm.embed import Embedder

        return PushCopyGenerator(backend, lib, rm.score if rm else None, Embedder().embed, n=n, reward_name=reward_name)

    # One generator per process: built here for the local engine, inside each Ray worker otherwise
    # (the reward and embedding models are loaded there rather than pickled across).
    generator = BuiltOnce(lambda: build_generator(load_reward_model(reward_dir) if reward_dir else None),
                          preset=build_generator(reward) if engine.engine == "local" else None)
    task = PushTask(PushCopyGenerator(backend, lib, n=n, reward_name=reward_name), generator, styles, constraints)

    def one(rec: dict[str, Any]) -> dict[str, Any]:
        if not rec["text"].strip():
            raise InvalidInputError("item has no text to write copy for", record=rec["id"], field="/".join(text_fields))
        return {"results": [r.to_record() for r in generator.get().generate(rec["id"], rec["text"], styles, constraints)]}

    records = iter_items(items, id_field=id_field, text_fields=text_fields, encoding=encoding)
    if limit is not None:  # stops reading there: a 10-item trial of a huge catalogue reads 10 rows
        records = itertools.islice(records, limit)
    job = BatchJob(push_parts_dir(out), one, id_field="id", desc="push copy", progress=progress, engine=engine, task=task, stage=stage)
    t0 = time.perf_counter()
    summary = job.run(records)
    frame = push_frame(job.results())
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    meta = {**summary.to_dict(), "rows": len(frame), "items_ok": int(summary.total_done - summary.new_failed), "model": backend.model_id,
            "prompt": PushCopyGenerator.prompt_id_for(lib), "reward_model": reward_name,
            "engine": engine.to_dict(), **({"stage": stage.describe()} if stage is not None else {}), "styles": styles, "n": n,
            "seconds": round(time.perf_counter() - t0, 1), "rejections": dict(rejection_counts(frame))}
    Path(str(out) + ".json").write_text(json.dumps(meta, indent=2, default=str))
    return meta


def push_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (item, style) — failures included with their error."""
    rows = []
    for r in results:
        if r["status"] != "ok":
            rows.append({"item_id": r["id"], "style": None, "status": "failed", "error": r["error"], "candidates": "[]", "chosen": None})
            continue
        for res in r["result"]["results"]:
            rows.append({**res, "candidates": json.dumps(res["candidates"], ensure_ascii=False), "error": None})
    cols = ["item_id", "style", "status", "chosen", "chosen_score", "candidates", "error", "model", "prompt", "library", "reward_model", "tokens"]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df:
            df[c] = None
    return df[cols]


def rejection_counts(frame: pd.DataFrame) -> Counter:
    c: Counter = Counter()
    for cands in frame["candidates"]:
        for cand in json.loads(cands or "[]"):
            c["candidates"] += 1
            for reason in cand["reasons"]:
                c[reason_kind(reason)] += 1
    return c


__all__ = ["generate_push_batch", "iter_items", "push_frame", "score_copies", "train_reward_model", "upworthy_pairs"]
