"""The processor path of the `ray` engine: a `PromptTask` through one of Ray's LLM stages.

With `--engine ray` and a backend that is an engine of its own — `vllm` (Ray's vLLM engine stage,
GPU replicas with continuous batching) or `openai` (Ray's HTTP stage in front of an
OpenAI-compatible server: `vllm serve`, llama.cpp's server, a hosted API) — recsage does not
put one backend in each actor. It expands every record into its chat requests, lets Ray's stage
generate, and validates each text with the component's own `finish` next to the generation:

    records ─ expand (task.requests) ─ [Ray LLM stage] ─ finish (task.finish) ─▶ driver: combine, write

Resume rules are the batch job's: finished ids are filtered first, only the driver writes lines
(fsynced), a record's line is written only when all its requests are back, and every input id
ends with exactly one line (a record whose block the stage dropped is written as failed, and
`--retry-failed` runs it again).
"""

from __future__ import annotations

import copy
import pickle
import socket
from collections import defaultdict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from recsage.core.errors import RecsageError
from recsage.llm.base import LLMBackend
from recsage.llm.batch import failed_row
from recsage.llm.errors import EngineError
from recsage.llm.openai_http import chat_body, response_text
from recsage.llm.ray_engine import RECORD_COLUMN, _input_dataset, connect
from recsage.llm.tasks import ChatRequest, PromptTask

if TYPE_CHECKING:  # pragma: no cover
    from recsage.llm.batch import BatchJob, PartWriter


class HttpStage:
    """Ray's HTTP request stage posting OpenAI-style chat completions to `base_url`, with
    `concurrency` request actors and an optional `qps` limit per actor."""

    kind = "openai"

    def __init__(self, base_url: str, model: str, *, json_mode: str = "json_schema", api_key: str | None = None,
                 concurrency: int = 1, qps: int | None = None, batch_size: int = 8, max_retries: int = 3) -> None:
        if not base_url:
            raise EngineError("the HTTP stage needs the server's base URL (--base-url http://host:port/v1)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.json_mode = json_mode
        self.api_key = api_key
        self.concurrency = concurrency
        self.qps = qps
        self.batch_size = batch_size
        self.max_retries = max_retries  # 429/5xx and connection errors, with exponential backoff (Ray's stage)

    def config(self) -> Any:
        from ray.data.llm import HttpRequestProcessorConfig

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else None
        return HttpRequestProcessorConfig(url=f"{self.base_url}/chat/completions", headers=headers, qps=self.qps,
                                          concurrency=self.concurrency, batch_size=self.batch_size, max_retries=self.max_retries)

    def check(self, cluster_resources: dict[str, float]) -> None:
        """An unreachable server fails here, in seconds, rather than after Ray's request retries."""
        url = urlsplit(self.base_url)
        try:
            socket.create_connection((url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)), timeout=5).close()
        except OSError as e:
            raise EngineError(f"the LLM server at {self.base_url} is not reachable ({e}): start it, or fix --base-url") from e

    def row(self, request: ChatRequest) -> dict[str, Any]:
        return {"payload": chat_body(self.model, request.messages, request.params, request.json_schema, self.json_mode)}

    @staticmethod
    def text(row: dict[str, Any]) -> str:
        data = row.get("http_response")
        try:
            return response_text(data)[0]
        except (KeyError, IndexError, TypeError):
            raise RecsageError(f"the server's answer is not a chat completion: {str(data)[:300]}") from None

    def describe(self) -> dict[str, Any]:
        return {"stage": self.kind, "base_url": self.base_url, "model": self.model, "concurrency": self.concurrency, "qps": self.qps}


def without_backends(obj: Any, depth: int = 2) -> Any:
    """A shallow copy of a task whose components' LLM backends are dropped (to `depth` levels):
    on this path Ray's stage generates and the task only prompts and validates, and a live
    backend — an HTTP client's locks, a loaded model — cannot be pickled to the workers."""
    if depth < 0 or not hasattr(obj, "__dict__"):
        return obj
    out = copy.copy(obj)
    for name, value in vars(obj).items():
        if isinstance(value, LLMBackend):
            setattr(out, name, None)
        elif depth > 0 and hasattr(value, "__dict__") and not isinstance(value, type):
            setattr(out, name, without_backends(value, depth - 1))
    return out


def _record(row: dict[str, Any]) -> dict[str, Any]:
    if RECORD_COLUMN in row:
        return pickle.loads(row[RECORD_COLUMN])
    return {k: v for k, v in row.items()}


def _expander(task: PromptTask, id_field: str):
    """record → one row per chat request (or one row carrying why the record cannot be prompted)."""

    def expand(row: dict[str, Any]) -> list[dict[str, Any]]:
        rec = _record(row)
        rid, blob = str(rec[id_field]), pickle.dumps(rec)
        try:
            reqs = task.requests(rec)
        except RecsageError as e:
            return [{"id": rid, "k": 0, "n": 1, "rec": blob, "req": None, "error": str(e)}]
        return [{"id": rid, "k": k, "n": len(reqs), "rec": blob, "req": pickle.dumps(r), "error": None} for k, r in enumerate(reqs)]

    return expand


def _finisher(task: PromptTask, stage: Any):
    def finish(row: dict[str, Any]) -> dict[str, Any]:
        out = {"id": row["id"], "k": row["k"], "n": row["n"], "rec": row["rec"], "part": None, "error": None}
        try:
            out["part"] = pickle.dumps(task.finish(pickle.loads(row["rec"]), int(row["k"]), stage.text(row)))
        except RecsageError as e:
            out["error"] = str(e)
        except Exception as e:  # a bug in the component's parser: this record's failure, not the job's end
            out["error"] = f"worker error: {type(e).__name__}: {e}"
        return out

    return finish


def run_task_on_processor(job: BatchJob, records: Any, finished: set[str], writer: PartWriter) -> None:
    if job.task is None:
        raise EngineError(f"the {job.desc!r} job has no prompt task, so it cannot run on Ray's {job.stage.kind} stage")
    ray = connect(job.engine)
    from ray.data.llm import build_processor

    job.stage.check(ray.cluster_resources())
    ctx = ray.data.DataContext.get_current()
    ctx.max_errored_blocks = -1  # a dropped block's records are written as failed below
    ctx.enable_progress_bars = False
    task, stage = without_backends(job.task), job.stage
    ds, _held = _input_dataset(ray, job, records, finished, writer)
    expanded = ds.flat_map(_expander(task, job.id_field), num_cpus=0.5).materialize()
    for row in expanded.filter(lambda r: r["error"] is not None, num_cpus=0).iter_rows():  # records that cannot be prompted
        writer.write(failed_row(row["id"], row["error"]))
    prompts = expanded.filter(lambda r: r["error"] is None, num_cpus=0)
    processor = build_processor(stage.config(), preprocess=lambda r: {**r, **stage.row(pickle.loads(r["req"]))},
                                postprocess=_finisher(task, stage))
    parts: dict[str, dict[int, Any]] = defaultdict(dict)
    written: set[str] = set()
    for row in processor(prompts).iter_rows():
        rid = row["id"]
        if rid in written:  # a part of a record that already failed on another part
            continue
        if row["error"] is not None:
            writer.write(failed_row(rid, row["error"]))
        else:
            parts[rid][int(row["k"])] = pickle.loads(row["part"])
            if len(parts[rid]) < int(row["n"]):
                continue
            result = task.combine(pickle.loads(row["rec"]), [parts[rid][k] for k in range(int(row["n"]))])
            writer.write({"id": rid, "status": "ok", "result": result, "error": None, "attempts": 1})
        written.add(rid)
        parts.pop(rid, None)
    for rid in sorted(set(prompts.unique("id") or ()) - written):  # unique() is None on an empty dataset (all finished)
        writer.write(failed_row(rid, f"Ray's {stage.kind} stage returned no answer for this record (its block failed); "
                                     "re-run with --retry-failed"))
