"""`BatchJob`: the runner behind every long LLM job.

Streams input records, writes each finished record immediately to an append-only JSONL part,
shows progress with throughput, retries transient errors with backoff, and on restart skips
every record already written — so a killed job resumes with nothing lost or duplicated.
A record that fails permanently is written as a failure with its reason (and is not retried on
resume unless asked), so every input id ends up exactly once in the output.

Two engines run the same job with the same outputs and resume semantics: `local` (this process,
optionally a thread pool for HTTP backends) and `ray` (Ray Data actors, one LLM backend per actor;
`recsage.llm.ray_engine`, imported only when asked for). Either way only the driver writes lines,
so "written" always means "finished".
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from recsage.core.errors import InvalidInputError, RecsageError
from recsage.core.heartbeat import heartbeat
from recsage.llm.errors import EngineError, TransientLLMError

ENGINES = ("local", "ray")


@dataclass
class BatchSummary:
    total_done: int = 0
    new_ok: int = 0
    new_failed: int = 0
    skipped_done: int = 0
    truncated_lines: int = 0
    seconds: float = 0.0
    failure_reasons: Counter = field(default_factory=Counter)

    @property
    def throughput(self) -> float:
        n = self.new_ok + self.new_failed
        return n / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_done": self.total_done,
            "new_ok": self.new_ok,
            "new_failed": self.new_failed,
            "skipped_done": self.skipped_done,
            "truncated_lines": self.truncated_lines,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.throughput, 4),
            "failure_reasons": dict(self.failure_reasons),
        }


@dataclass(frozen=True)
class EngineConfig:
    """Where a batch job runs. Overridable from CLI flags (`--engine ray --ray-address … --actors …`).

    `ray`: a Ray Data actor pool of `actors` workers, each reserving `cpus_per_actor` CPUs (and
    `gpus_per_actor` GPUs) and building its own LLM backend; `address` is a running cluster
    (`host:port`, `ray://host:port` or `auto`), None starts a local Ray on this machine.
    `block_size` records go to an actor per call; an actor that dies is restarted `max_restarts`
    times, then the records it held are re-run one at a time and a record that still kills its
    worker is written as a failure.
    """

    engine: str = "local"
    address: str | None = None
    actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    block_size: int = 4
    max_restarts: int = 2

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InvalidInputError(f"unknown engine {self.engine!r}; known engines: {', '.join(ENGINES)}", field="engine")
        for name in ("actors", "block_size"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"{name} must be at least 1, got {getattr(self, name)}", field=name)
        for name in ("cpus_per_actor", "gpus_per_actor", "max_restarts"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name} must not be negative, got {getattr(self, name)}", field=name)
        if self.engine == "local" and self.address:
            raise InvalidInputError("a Ray address needs --engine ray", field="address")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def call_with_retries(fn: Callable[[dict[str, Any]], dict[str, Any]], record: dict[str, Any], rid: str, *,
                      max_retries: int, backoff_seconds: float) -> dict[str, Any]:
    """One output row for one record: transient errors retried with backoff, recsage errors recorded."""
    for attempt in range(max_retries + 1):
        try:
            return {"id": rid, "status": "ok", "result": fn(record), "error": None, "attempts": attempt + 1}
        except TransientLLMError as e:
            if attempt == max_retries:
                return failed_row(rid, f"transient error after {attempt + 1} attempts: {e}", attempt + 1)
            time.sleep(backoff_seconds * (2**attempt))
        except RecsageError as e:
            return failed_row(rid, str(e), attempt + 1)
    raise AssertionError("unreachable")


def failed_row(rid: str, error: str, attempts: int = 1) -> dict[str, Any]:
    return {"id": rid, "status": "failed", "result": None, "error": error, "attempts": attempts}


def output_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=str) + "\n"


class PartWriter:
    """Appends output lines to this run's part, fsynced one by one, and keeps the run's counts."""

    def __init__(self, part: Path, summary: BatchSummary, bar: Any, start: float) -> None:
        self.part = part
        self.summary = summary
        self.bar = bar
        self.start = start
        self._out = open(part, "a", encoding="utf-8")

    def skip(self) -> None:
        self.summary.skipped_done += 1
        self.bar.update(1)

    def write(self, row: dict[str, Any], line: str | None = None) -> None:
        self._out.write(line if line is not None else output_line(row))
        self._out.flush()
        os.fsync(self._out.fileno())
        s = self.summary
        if row["status"] == "ok":
            s.new_ok += 1
        else:
            s.new_failed += 1
            s.failure_reasons[str(row["error"]).split(":")[0][:80]] += 1
        self.bar.update(1)
        rate = (s.new_ok + s.new_failed) / max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix(ok=s.new_ok, failed=s.new_failed, rate=f"{rate:.2f}/s")

    def close(self) -> None:
        self._out.close()
        if self.part.stat().st_size == 0:
            self.part.unlink()


class BatchJob:
    """`fn(record) -> dict` is applied to each input record (a dict with an id field).

    Output lines are `{"id": …, "status": "ok"|"failed", "result": {...} | null, "error": str | null}`.
    With `engine=EngineConfig(engine="ray")` `fn` is sent to Ray workers, so it must pickle
    (cloudpickle): give it its LLM as configuration (`LazyBackend`), not a loaded model.
    With a `stage` as well (Ray's vLLM or HTTP stage, `registry.stage_for`), the job's `task`
    (a `PromptTask`: the same work as `fn`, written as requests + validation) runs through that
    stage instead of `fn` (`recsage.llm.ray_processor`).
    """

    def __init__(
        self,
        out_dir: str | Path,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        id_field: str = "id",
        max_concurrency: int = 1,
        max_retries: int = 3,
        backoff_seconds: float = 1.0,
        retry_failed: bool = False,
        desc: str = "batch",
        progress: bool = True,
        engine: EngineConfig | None = None,
        task: Any = None,
        stage: Any = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.fn = fn
        self.id_field = id_field
        self.max_concurrency = max(1, max_concurrency)
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.retry_failed = retry_failed
        self.desc = desc
        self.progress = progress
        self.engine = engine or EngineConfig()
        self.task = task
        self.stage = stage
        if stage is not None and self.engine.engine != "ray":
            raise EngineError(f"Ray's {stage.kind} stage runs on the ray engine: add --engine ray")

    # ---- reading what exists ----
    def _parts(self) -> list[Path]:
        return sorted((self.out_dir / "parts").glob("part-*.jsonl"))

    def _lines(self) -> Iterable[dict[str, Any] | None]:
        """Every output line in write order; None for an unreadable one (only a kill mid-write leaves
        one, always at the end of a part)."""
        for p in self._parts():
            with open(p, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                        row["id"] = str(row["id"])
                        yield row
                    except (json.JSONDecodeError, KeyError, TypeError):
                        yield None

    def read(self) -> tuple[dict[str, dict[str, Any]], int]:
        """Latest line per id across parts (a retried failure is superseded), and the count of
        unreadable lines."""
        done: dict[str, dict[str, Any]] = {}
        bad = 0
        for row in self._lines():
            if row is None:
                bad += 1
            else:
                done[row["id"]] = row
        return done, bad

    def line_counts(self) -> Counter:
        """Lines per id: more than one `ok` line for an id would be a duplicate (the kill tests check it)."""
        return Counter(row["id"] for row in self._lines() if row is not None and row["status"] == "ok")

    def finished_ids(self, done: dict[str, dict[str, Any]] | None = None) -> set[str]:
        """Ids a run skips: every ok id, and failed ids unless `retry_failed` (of `done`, or of what is on disk)."""
        done = self.read()[0] if done is None else done
        return {k for k, v in done.items() if v["status"] == "ok" or not self.retry_failed}

    def results(self) -> list[dict[str, Any]]:
        return list(self.read()[0].values())

    def to_frame(self) -> pd.DataFrame:
        rows = []
        for r in self.results():
            rows.append({"id": r["id"], "status": r["status"], "error": r.get("error"), **(r.get("result") or {})})
        return pd.DataFrame(rows)

    # ---- running ----
    def _call(self, record: dict[str, Any]) -> dict[str, Any]:
        return call_with_retries(self.fn, record, str(record[self.id_field]), max_retries=self.max_retries,
                                 backoff_seconds=self.backoff_seconds)

    def pending(self, records: Iterable[dict[str, Any]], finished: set[str], writer: PartWriter) -> Iterable[dict[str, Any]]:
        """Input records not yet finished, after checking every id is present and unique."""
        seen_ids: set[str] = set()
        for rec in records:
            if not isinstance(rec, dict) or self.id_field not in rec:
                raise InvalidInputError("record has no id", record=len(seen_ids), field=self.id_field)
            rid = str(rec[self.id_field])
            if rid in seen_ids:
                raise InvalidInputError(f"duplicate id {rid!r} in the input", record=len(seen_ids), field=self.id_field)
            seen_ids.add(rid)
            if rid in finished:
                writer.skip()
                continue
            yield rec

    def run(self, records: Any, total: int | None = None) -> BatchSummary:
        """`records`: an iterable of dicts, or with the ray engine also a Ray Dataset (e.g.
        `ray.data.read_parquet(dir)`), whose finished ids are then filtered inside the cluster."""
        from recsage.core.locks import exclusive_folder

        with exclusive_folder(self.out_dir, "batch job"):
            return self._run(records, total)

    def _run(self, records: Any, total: int | None) -> BatchSummary:
        (self.out_dir / "parts").mkdir(exist_ok=True)
        done, bad = self.read()
        summary = BatchSummary(truncated_lines=bad)
        finished = self.finished_ids(done)
        part = self.out_dir / "parts" / f"part-{len(self._parts()) + 1:05d}-{os.getpid()}.jsonl"
        start = time.perf_counter()
        bar = tqdm(total=total, desc=self.desc, unit="rec", disable=not self.progress, dynamic_ncols=True)
        writer = PartWriter(part, summary, bar, start)
        status = (lambda: f"{self.desc}: {summary.new_ok} ok, {summary.new_failed} failed, {summary.skipped_done} already done"
                  + (f" of {total}" if total else ""))
        try:
            with heartbeat(status, enabled=not self.progress):  # a line every 30 s when no bar shows
                if self.stage is not None:
                    from recsage.llm.ray_processor import run_task_on_processor

                    run_task_on_processor(self, records, finished, writer)
                elif self.engine.engine == "ray":
                    from recsage.llm.ray_engine import run_on_ray

                    run_on_ray(self, records, finished, writer)
                elif not isinstance(records, Iterable) or isinstance(records, (str, bytes)):
                    raise EngineError(f"the local engine reads an iterable of records, got {type(records).__name__}; "
                                      "a Ray Dataset needs --engine ray")
                else:
                    self._run_local(self.pending(records, finished, writer), writer)
        finally:
            bar.close()
            writer.close()
        summary.seconds = time.perf_counter() - start
        summary.total_done = len(self.read()[0])
        (self.out_dir / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
        return summary

    def _run_local(self, records: Iterable[dict[str, Any]], writer: PartWriter) -> None:
        # Concurrency 1 runs in the caller's thread: llama.cpp's OpenMP team is per calling thread,
        # and a worker thread's new team competes with the caller's still-spinning one on a small
        # machine (measured: the same 4 prompts 19 s inline vs 26-31 s from a worker thread).
        if self.max_concurrency == 1:
            for rec in records:
                writer.write(self._call(rec))
            return
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            inflight: set = set()
            for rec in records:
                inflight.add(pool.submit(self._call, rec))
                if len(inflight) >= self.max_concurrency * 2:
                    finished_now, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                    for f in finished_now:
                        writer.write(f.result())
            for f in inflight:
                writer.write(f.result())
