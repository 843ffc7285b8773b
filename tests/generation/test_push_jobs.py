"""Background batch jobs: status from files alone, clear refusals (the real run is in tests/app)."""

import json

import pytest

from recsage.core.errors import InvalidInputError
from recsage.pipelines.jobs import job_status, start_push_job


def test_status_of_a_folder_without_a_job(tmp_path):
    s = job_status(tmp_path / "nothing")
    assert s == {"exists": False, "running": False, "pid": None, "done": 0, "failed": 0, "total": 0}


def test_bad_launches_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="at least one style"):
        start_push_job(tmp_path / "items.csv", tmp_path / "job", styles=[])
    with pytest.raises(InvalidInputError, match="items file not found"):
        start_push_job(tmp_path / "missing.csv", tmp_path / "job", styles=["question"])


def test_status_counts_finished_and_failed_parts_of_a_dead_job(tmp_path):
    """A job whose process is gone and left no output is reported as crashed, with what it finished."""
    job = tmp_path / "job"
    parts = job / "push.parquet.parts" / "parts"
    parts.mkdir(parents=True)
    rows = [{"id": "1", "status": "ok", "result": {"results": []}, "error": None}, {"id": "2", "status": "failed", "result": None, "error": "x"}]
    (parts / "part-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (job / "job.json").write_text(json.dumps({"pid": 2**22 + 12345, "total": 5, "started": 0, "styles": ["question"]}))
    s = job_status(job)
    assert s["done"] == 2 and s["failed"] == 1 and not s["running"] and s["crashed"] and not s["finished"]
