"""The `ray` engine of `BatchJob`: Ray Data `map_batches` over an actor pool.

Each actor unpickles the job's function once and builds its own LLM backend on first use (the
function carries its LLM as configuration, see `LazyBackend`), so one actor = one loaded model.
Only the driver writes output lines (fsynced, as with the local engine), which keeps the resume
rule simple: an id that has a line is finished, any other id is run again — a kill of the driver,
of an actor or of the whole cluster loses at most in-flight work and never duplicates a line.

Crashes: a dead actor is restarted up to `max_restarts` times and its block retried; blocks that
still fail are dropped by Ray (`max_errored_blocks=-1`) and their records re-run one record per
block, so a record that kills its worker every time is isolated and written as a failure naming
it, while its block-mates finish normally.

Imported only when `--engine ray` is asked for, so the core installs and tests without Ray.
"""

from __future__ import annotations

import os
import pickle
import socket
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from recsage.core.errors import InvalidInputError
from recsage.llm.batch import EngineConfig, call_with_retries, failed_row, output_line
from recsage.llm.errors import EngineError

if TYPE_CHECKING:  # pragma: no cover
    from recsage.llm.batch import BatchJob, PartWriter

RECORD_COLUMN = "__recsage_record"
CONNECT_TIMEOUT_SECONDS = 3.0


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:  # pragma: no cover - the scale extra is part of make install
        raise EngineError("--engine ray needs Ray Data: pip install 'recsage[scale]'") from e
    return ray


def _check_reachable(address: str) -> None:
    """`ray.init` retries an unreachable address for about a minute; a socket check fails in seconds."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInputError(f"Ray address {address!r} is not host:port, ray://host:port or 'auto'", field="address")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as e:
        raise EngineError(f"Ray address {address} is not reachable ({e}); start the cluster with `ray start --head` "
                          "or drop --ray-address to run a local Ray") from e


def _use_token_if_present() -> None:
    """`ray start` turns on token authentication when ~/.ray/auth_token exists, but a driver joining
    with an address only sends the token when RAY_AUTH_MODE=token: do what `ray start` did."""
    try:
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
    except ImportError:  # pragma: no cover - Ray versions without token auth
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def connect(engine: EngineConfig) -> Any:
    """Joins the cluster at `engine.address`, or starts a local Ray sized to this machine."""
    ray = _ray()
    if engine.address and engine.address != "auto":
        _check_reachable(engine.address)  # also when this process already joined a cluster: the flag must be right
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
        if engine.address:
            _use_token_if_present()
            kwargs["address"] = engine.address
        else:
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise EngineError(f"could not connect to Ray at {engine.address or 'a new local cluster'}: {e}") from e
    total_cpus = float(ray.cluster_resources().get("CPU", 0))
    wanted = engine.actors * engine.cpus_per_actor
    if wanted > total_cpus:
        raise EngineError(f"{engine.actors} actors x {engine.cpus_per_actor:g} CPUs = {wanted:g} CPUs, but the Ray cluster has "
                          f"{total_cpus:g}: lower --actors or --cpus-per-actor")
    if engine.gpus_per_actor and engine.actors * engine.gpus_per_actor > float(ray.cluster_resources().get("GPU", 0)):
        raise EngineError(f"{engine.actors} actors x {engine.gpus_per_actor:g} GPUs exceed the cluster's GPUs")
    return ray


class BatchWorker:
    """One Ray actor: the job's function, built once, applied record by record to each block."""

    def __init__(self, fn_blob: bytes, id_field: str, max_retries: int, backoff_seconds: float, threads: int) -> None:
        # llama.cpp sizes its thread team from this (see `llamacpp.default_threads`): one actor's
        # team must fit in the CPUs Ray reserved for it, or actors fight over cores.
        os.environ["RECSAGE_LLM_THREADS"] = str(threads)
        from ray import cloudpickle

        self.fn = cloudpickle.loads(fn_blob)
        self.id_field = id_field
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        if RECORD_COLUMN in batch.column_names:
            records = [pickle.loads(b) for b in batch.column(RECORD_COLUMN).to_pylist()]
        else:
            records = batch.to_pylist()
        ids, statuses, errors, lines = [], [], [], []
        for rec in records:
            rid = str(rec[self.id_field])
            try:
                row = call_with_retries(self.fn, rec, rid, max_retries=self.max_retries, backoff_seconds=self.backoff_seconds)
            except Exception as e:  # a bug in the job's function: recorded for this record, not the block's end
                row = failed_row(rid, f"worker error: {type(e).__name__}: {e}")
            ids.append(rid)
            statuses.append(row["status"])
            errors.append(row["error"])
            lines.append(output_line(row))
        return pa.table({"id": ids, "status": statuses, "error": errors, "line": lines})


def _pickled_fn(job: BatchJob) -> bytes:
    from ray import cloudpickle

    try:
        return cloudpickle.dumps(job.fn)
    except Exception as e:
        raise EngineError(f"the {job.desc!r} job's function cannot be sent to Ray workers ({type(e).__name__}: {e}); "
                          "give it its LLM as configuration (recsage.llm.LazyBackend), not a loaded model") from e


def _without(ds: Any, id_field: str, ids: frozenset[str], keep: bool) -> Any:
    """Rows of a user's Ray Dataset whose id is (keep) or is not (not keep) in `ids`. The filter
    reserves no CPU: the actor pool may hold every CPU, and a filter task waiting for one would
    stall the pipeline."""
    return ds.filter(lambda row: (str(row[id_field]) in ids) == keep, num_cpus=0)


def _input_dataset(ray: Any, job: BatchJob, records: Any, finished: set[str], writer: PartWriter) -> tuple[Any, list | None]:
    """The records still to run as a Ray Dataset, and the records themselves when the driver holds them.

    A Ray Dataset input stays in the cluster: finished ids are filtered there and its ids are only
    collected when a crash leaves records to re-run."""
    if isinstance(records, ray.data.Dataset):
        if job.id_field not in records.columns():
            raise InvalidInputError(f"the input dataset has no {job.id_field!r} column (columns: {records.columns()})", field=job.id_field)
        # Materialised (into the object store, which spills to disk) before the actor pool starts:
        # read and filter tasks each want a CPU, and an actor pool holding every CPU would starve them.
        return _without(records, job.id_field, frozenset(finished), keep=False).materialize(), None
    if not isinstance(records, Iterable):
        raise EngineError(f"the ray engine reads records or a Ray Dataset, got {type(records).__name__}")
    pending = list(job.pending(records, finished, writer))
    return _from_records(ray, pending), pending


def _from_records(ray: Any, records: list[dict[str, Any]]) -> Any:
    # pickled whole: a record's nested values (lists, numpy scalars, dataclasses) arrive unchanged
    return ray.data.from_items([{RECORD_COLUMN: pickle.dumps(r)} for r in records])


def _stream(ray: Any, job: BatchJob, ds: Any, fn_blob: bytes, block_size: int, writer: PartWriter, written: set[str],
            *, isolate: bool = False) -> None:
    """Runs `ds` through the actor pool and writes every returned line as it arrives. `isolate`:
    one block in flight per actor, so an actor that dies takes no queued neighbour with it."""
    out = _map_batches(ray, ds, job, fn_blob, block_size, isolate)
    for batch in out.iter_batches(batch_size=None, batch_format="pyarrow"):
        for rid, status, error, line in zip(*(batch.column(c).to_pylist() for c in ("id", "status", "error", "line")), strict=True):
            if rid in written:
                raise InvalidInputError(f"duplicate id {rid!r} in the input dataset", field=job.id_field)
            writer.write({"id": rid, "status": status, "error": error}, line)
            written.add(rid)


def _map_batches(ray: Any, ds: Any, job: BatchJob, fn_blob: bytes, block_size: int, isolate: bool) -> Any:
    e = job.engine
    # Ray Data restarts a dead actor and retries its block forever by default (-1): a record that
    # kills its worker would never end. Bounded here; only `ray_remote_args` can set these in Ray
    # 2.60 (deprecated for removal in 2.64: the pin in pyproject keeps them working).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ds.map_batches(
            BatchWorker,
            fn_constructor_kwargs={"fn_blob": fn_blob, "id_field": job.id_field, "max_retries": job.max_retries,
                                   "backoff_seconds": job.backoff_seconds, "threads": max(1, int(e.cpus_per_actor))},
            batch_size=block_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=e.actors, max_tasks_in_flight_per_actor=1 if isolate else None),
            num_cpus=e.cpus_per_actor,
            num_gpus=e.gpus_per_actor or None,
            max_restarts=e.max_restarts,
            max_task_retries=e.max_restarts,
        )


def run_on_ray(job: BatchJob, records: Any, finished: set[str], writer: PartWriter) -> None:
    ray = connect(job.engine)
    ctx = ray.data.DataContext.get_current()
    # Dropped blocks do not end the job: their records are re-run one by one below.
    ctx.max_errored_blocks = -1
    ctx.enable_progress_bars = False
    fn_blob = _pickled_fn(job)
    ds, held = _input_dataset(ray, job, records, finished, writer)
    written: set[str] = set()
    _stream(ray, job, ds, fn_blob, job.engine.block_size, writer, written)
    if held is not None:
        ids = {str(r[job.id_field]) for r in held}
    elif ds.count() == len(written):  # a Ray Dataset input (materialised: its count is known) came back whole
        return
    else:  # only now collect its ids, to find the ones a crash left out
        ids = {str(v) for v in ds.select_columns([job.id_field]).to_pandas()[job.id_field]}
    missing = frozenset(ids - written)
    if not missing:
        return
    # Isolate what crashed: one record per block, so only the record that kills a worker is lost.
    if held is not None:
        retry = _from_records(ray, [r for r in held if str(r[job.id_field]) in missing])
    else:
        retry = _without(ds, job.id_field, missing, keep=True)
    _stream(ray, job, retry, fn_blob, 1, writer, written, isolate=True)
    for rid in sorted(ids - written):
        writer.write(failed_row(rid, f"worker crashed on this record: the Ray actor died each time it ran it "
                                     f"({job.engine.max_restarts} restarts, then alone in its block)"))
