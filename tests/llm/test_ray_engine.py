"""The `ray` engine of BatchJob on a real local Ray cluster: same outputs and resume semantics as
the local engine, crash isolation, Parquet-directory input, kill -9 of the driver, clear errors,
and the embedded 0.5B model tagging items on Ray exactly as it does locally."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray")
from ray import cloudpickle  # noqa: E402

from recsage.core.errors import InvalidInputError  # noqa: E402
from recsage.llm import BatchJob, EngineConfig, EngineError  # noqa: E402

HERE = Path(__file__).parent
# Ray workers unpickle the job functions; they cannot import this test module, so send it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def engine(address, **kw):
    return EngineConfig(engine="ray", address=address, **({"actors": 2, "cpus_per_actor": 1, "block_size": 3} | kw))


def records(n):
    return [{"id": f"r{i}", "x": i, "tags": ["a", str(i)]} for i in range(n)]


def square(rec):
    return {"square": rec["x"] ** 2, "tags": list(rec["tags"]), "pid": os.getpid()}


def results(job):
    return {r["id"]: {k: v for k, v in (r["result"] or {}).items() if k != "pid"} | {"status": r["status"]} for r in job.results()}


def test_ray_matches_local_and_resumes(tmp_path, ray_address):
    local = BatchJob(tmp_path / "local", square, progress=False)
    local.run(records(20))
    on_ray = BatchJob(tmp_path / "ray", square, progress=False, engine=engine(ray_address))
    first = on_ray.run(records(12))
    assert first.new_ok == 12
    pids = {r["result"]["pid"] for r in on_ray.results()}
    assert os.getpid() not in pids  # really ran in Ray workers
    again = on_ray.run(records(20))  # resume: only the 8 new ones run
    assert (again.skipped_done, again.new_ok) == (12, 8)
    assert results(on_ray) == results(local)
    assert max(on_ray.line_counts().values()) == 1


def crash_on_r7(rec):
    if rec["id"] == "r7":
        os._exit(1)  # the worker process dies, as on a segfault or an OOM kill
    return {"square": rec["x"] ** 2}


def test_record_that_kills_its_worker_is_isolated_and_recorded(tmp_path, ray_address):
    job = BatchJob(tmp_path / "crash", crash_on_r7, progress=False, engine=engine(ray_address, max_restarts=1))
    summary = job.run(records(12))
    rows = {r["id"]: r for r in job.results()}
    assert len(rows) == 12 and summary.new_ok == 11 and summary.new_failed == 1
    assert rows["r7"]["status"] == "failed" and "worker crashed on this record" in rows["r7"]["error"]
    assert all(rows[f"r{i}"]["result"]["square"] == i * i for i in range(12) if i != 7)  # its block-mates finished
    assert max(job.line_counts().values()) == 1


def buggy(rec):
    if rec["x"] == 3:
        raise KeyError("no such field")
    return {"ok": True}


def test_a_bug_in_the_function_is_a_failed_record_not_a_dead_job(tmp_path, ray_address):
    job = BatchJob(tmp_path / "bug", buggy, progress=False, engine=engine(ray_address))
    summary = job.run(records(6))
    assert (summary.new_ok, summary.new_failed) == (5, 1)
    assert "worker error: KeyError" in {r["id"]: r for r in job.results()}["r3"]["error"]


def test_parquet_directory_input_filters_finished_ids_in_the_cluster(tmp_path, ray_address):
    src = tmp_path / "items"
    src.mkdir()
    frame = pd.DataFrame(records(30))
    for i, part in enumerate((frame.iloc[:10], frame.iloc[10:20], frame.iloc[20:])):
        part.to_parquet(src / f"part-{i}.parquet", index=False)
    job = BatchJob(tmp_path / "pq", square, progress=False, engine=engine(ray_address))
    job.run(records(5))  # 5 finished before the dataset run
    from recsage.llm.ray_engine import connect

    connect(job.engine)
    summary = job.run(ray.data.read_parquet(str(src)))
    assert (summary.new_ok, summary.new_failed) == (25, 0)
    assert results(job) == {f"r{i}": {"square": i * i, "tags": ["a", str(i)], "status": "ok"} for i in range(30)}
    with pytest.raises(InvalidInputError, match="no 'item_id' column"):
        BatchJob(tmp_path / "pq2", square, id_field="item_id", progress=False, engine=engine(ray_address)).run(ray.data.read_parquet(str(src)))


def count_lines(out: Path) -> int:
    return sum(1 for p in (out / "parts").glob("*.jsonl") for line in p.read_text().splitlines() if line.strip())


def test_kill_the_driver_three_times_then_resume_loses_and_duplicates_nothing(tmp_path, ray_address):
    out, n = tmp_path / "killed", 60
    for round_ in range(3):
        before = count_lines(out) if (out / "parts").exists() else 0
        child = subprocess.Popen([sys.executable, str(HERE / "_ray_batch.py"), str(out), ray_address, str(n)],
                                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and count_lines(out) < before + 6 and child.poll() is None:
            time.sleep(0.05)
        os.killpg(child.pid, signal.SIGKILL)  # the driver and anything it started, at an arbitrary point
        child.wait()
        assert count_lines(out) < n, f"round {round_}: the job finished before it was killed"
    job = BatchJob(out, square, progress=False, engine=engine(ray_address))
    summary = job.run(records(n))
    assert summary.skipped_done + summary.new_ok == n and summary.new_failed == 0
    assert sorted(job.line_counts()) == sorted(f"r{i}" for i in range(n))  # none lost
    assert max(job.line_counts().values()) == 1  # none twice
    assert all(r["result"]["double"] == 2 * int(r["id"][1:]) for r in job.results() if "double" in r["result"])


def test_clear_errors(tmp_path, ray_address):
    with pytest.raises(InvalidInputError, match="unknown engine 'spark'"):
        EngineConfig(engine="spark")
    with pytest.raises(InvalidInputError, match="actors must be at least 1"):
        EngineConfig(engine="ray", actors=0)
    t0 = time.perf_counter()
    with pytest.raises(EngineError, match="127.0.0.1:9 is not reachable"):
        BatchJob(tmp_path / "a", square, progress=False, engine=EngineConfig(engine="ray", address="127.0.0.1:9")).run(records(2))
    assert time.perf_counter() - t0 < 10
    with pytest.raises(EngineError, match="the Ray cluster has 2"):
        BatchJob(tmp_path / "b", square, progress=False, engine=engine(ray_address, actors=4)).run(records(2))
    lock = threading.Lock()
    with pytest.raises(EngineError, match="cannot be sent to Ray workers"):
        BatchJob(tmp_path / "c", lambda r: {"locked": lock.locked()}, progress=False, engine=engine(ray_address)).run(records(2))
    assert not list((tmp_path / "c" / "parts").glob("*.jsonl"))  # nothing half-written


@pytest.mark.slow
def test_real_embedded_model_tags_items_on_ray_as_it_does_locally(tmp_path, ray_address, bundled_data):
    """The embedded 0.5B model, greedy, same thread count: one Ray actor must write what the local engine writes."""
    from recsage.datasets.registry import load_dataset
    from recsage.knowledge.tagcf.extract import ItemTagger, tag_items_batch
    from recsage.knowledge.tagcf.vocab import seed_vocabulary
    from recsage.llm.registry import LLMConfig, backend_for

    vocab = seed_vocabulary("topic", {"field": ["biology", "chemistry", "physics", "lab equipment", "measurement", "safety"]})
    roles = seed_vocabulary("role", {"who": ["student", "lab technician"]})
    items = load_dataset("scientific", bundled_data / "scientific-sample").items.head(4)
    items = items[["item_id", "title"]].reset_index(drop=True)
    llm = LLMConfig(backend="embedded", model="small", cache=False, n_ctx=2048)
    eng = EngineConfig(engine="ray", address=ray_address, actors=1, cpus_per_actor=2, block_size=2)
    local = tag_items_batch(ItemTagger(backend_for(None, llm), vocab, roles), items, tmp_path / "local", progress=False)
    on_ray = tag_items_batch(ItemTagger(backend_for(eng, llm), vocab, roles), items, tmp_path / "ray", progress=False, engine=eng)
    assert on_ray.summary.new_ok + on_ray.summary.new_failed == len(items)
    cols = ["item_id", "status", "topics", "roles"]
    pd.testing.assert_frame_equal(local.tags[cols], on_ray.tags[cols])
    assert on_ray.meta["model"] == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    json.dumps(on_ray.meta)
