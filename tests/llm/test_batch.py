import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recsage.core.errors import InvalidInputError
from recsage.llm import BatchJob, LLMError, TransientLLMError

HERE = Path(__file__).parent


def records(n):
    return ({"id": f"r{i}", "x": i} for i in range(n))


def count_lines(out: Path) -> int:
    return sum(1 for p in (out / "parts").glob("*.jsonl") for line in p.read_text().splitlines() if line.strip())


def test_kill_and_resume_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "job"
    child = subprocess.Popen([sys.executable, str(HERE / "_slow_batch.py"), str(out)])
    deadline = time.time() + 60
    while time.time() < deadline and (not (out / "parts").exists() or count_lines(out) < 10):
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done_before = count_lines(out)
    assert 10 <= done_before < 40

    calls = []

    def work(rec):
        calls.append(rec["id"])
        return {"double": rec["x"] * 2}

    summary = BatchJob(out, work, progress=False).run(records(40), total=40)
    assert summary.skipped_done == done_before
    assert len(calls) == 40 - done_before  # nothing redone
    rows = [json.loads(line) for p in (out / "parts").glob("*.jsonl") for line in p.read_text().splitlines() if line.strip()]
    ids = [r["id"] for r in rows]
    assert sorted(ids) == sorted(f"r{i}" for i in range(40))  # nothing lost, nothing twice
    assert all(r["result"]["double"] == 2 * int(r["id"][1:]) for r in rows)


def test_truncated_last_line_is_recomputed(tmp_path):
    out = tmp_path / "job"
    BatchJob(out, lambda r: {"v": r["x"]}, progress=False).run(records(3))
    part = next((out / "parts").glob("*.jsonl"))
    part.write_text(part.read_text() + '{"id": "r3", "stat')  # a kill mid-write
    s = BatchJob(out, lambda r: {"v": r["x"]}, progress=False).run(records(5))
    assert s.truncated_lines == 1 and s.new_ok == 2 and s.total_done == 5


def test_transient_errors_retry_then_succeed(tmp_path):
    attempts = {}

    def flaky(rec):
        attempts[rec["id"]] = attempts.get(rec["id"], 0) + 1
        if attempts[rec["id"]] < 3:
            raise TransientLLMError("HTTP 503")
        return {"ok": 1}

    s = BatchJob(tmp_path / "j", flaky, backoff_seconds=0.001, progress=False).run(records(2))
    assert s.new_ok == 2 and attempts == {"r0": 3, "r1": 3}


def test_permanent_failures_are_recorded_with_reason(tmp_path):
    def fails(rec):
        if rec["x"] == 1:
            raise LLMError("context overflow")
        return {"ok": 1}

    job = BatchJob(tmp_path / "j", fails, progress=False)
    s = job.run(records(3))
    assert s.new_failed == 1 and s.new_ok == 2
    df = job.to_frame()
    assert df.set_index("id").loc["r1", "error"] == "context overflow"
    # failures are not retried on resume unless asked
    assert job.run(records(3)).new_failed == 0
    s = BatchJob(tmp_path / "j", lambda r: {"ok": 1}, retry_failed=True, progress=False).run(records(3))
    assert s.new_ok == 1 and s.total_done == 3
    assert set(BatchJob(tmp_path / "j", fails).to_frame()["status"]) == {"ok"}


def test_concurrency_and_input_checks(tmp_path):
    s = BatchJob(tmp_path / "j", lambda r: {"v": r["x"]}, max_concurrency=4, progress=False).run(records(30))
    assert s.new_ok == 30
    with pytest.raises(InvalidInputError, match="duplicate id"):
        BatchJob(tmp_path / "k", lambda r: {}, progress=False).run([{"id": 1}, {"id": 1}])
    with pytest.raises(InvalidInputError, match="no id"):
        BatchJob(tmp_path / "k2", lambda r: {}, progress=False).run([{"x": 1}])


def test_one_at_a_time_runs_in_the_calling_thread(tmp_path):
    """llama.cpp is ~1.4x slower when called from a worker thread (its OpenMP team is per thread)."""
    import threading

    threads = set()
    BatchJob(tmp_path / "j", lambda r: threads.add(threading.get_ident()) or {}, progress=False).run(records(3))
    assert threads == {threading.get_ident()}
    pooled = set()
    BatchJob(tmp_path / "p", lambda r: pooled.add(threading.get_ident()) or {}, max_concurrency=2, progress=False).run(records(6))
    assert threading.get_ident() not in pooled
