"""Background batch jobs the workbench can launch and watch.

A job is a `recsage …` CLI run in its own process (its own session, so a page rerun or a closed
browser tab never kills it), with everything on disk in one folder: `job.json` (command, pid,
expected item count), `job.log` (its output), and the batch's resumable parts. Status is read
from those files alone, so any page — or a notebook — can monitor a job it did not start, and
launching the same folder again resumes instead of redoing finished items.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.llm.batch import BatchJob

OUTPUT = "push.parquet"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a finished child we started is a zombie until reaped: not running
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        stat = Path(f"/proc/{pid}/stat")
        return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _finished(job_dir: Path) -> BatchJob:
    """Read-only handle on the job's parts (the same folder `generate_push_batch` writes)."""
    from recsage.pipelines.push import push_parts_dir

    return BatchJob(push_parts_dir(Path(job_dir) / OUTPUT), lambda r: r)


def start_push_job(items: str | Path, job_dir: str | Path, *, styles: list[str], n: int = 4, max_chars: int = 90, limit: int = 10,
                   model: str | None = None) -> dict[str, Any]:
    """Starts `recsage push generate` for the first `limit` items in the background."""
    job_dir = Path(job_dir)
    status = job_status(job_dir)
    if status["running"]:
        raise InvalidInputError(f"a job is already running in this folder (pid {status['pid']})", file=str(job_dir))
    if not styles:
        raise InvalidInputError("choose at least one style", field="styles")
    if not Path(items).exists():
        raise InvalidInputError("items file not found", file=str(items))
    cmd = ["push", "generate", "--items", str(items), "--out", str(job_dir / OUTPUT),
           "--styles", ",".join(styles), "--n", str(n), "--max-chars", str(max_chars), "--limit", str(limit)]
    if model:
        cmd += ["--model", model]
    return start_cli_job(job_dir, cmd, kind="push", total=limit, styles=styles, n=n)


def start_cli_job(job_dir: str | Path, args: list[str], *, kind: str, total: int | None = None, **extra: Any) -> dict[str, Any]:
    """`recsage ARGS…` in its own process and session, output in job.log, described by job.json."""
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "recsage.cli", *args]
    with open(job_dir / "job.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    meta = {"kind": kind, "pid": proc.pid, "cmd": cmd, "total": total, "started": time.time(), **extra}
    (job_dir / "job.json").write_text(json.dumps(meta, indent=2))
    return meta


def start_sid_job(prepared: str | Path, out: str | Path, *, method: str, levels: int, codes: int) -> dict[str, Any]:
    """A codebook fit in the background (an RQ-VAE on the sample took 689 s behind a spinner);
    the job folder is the codebook folder's sibling `<out>.job`."""
    job_dir = Path(str(out) + ".job")
    if cli_job_status(job_dir, Path(out) / "sids.parquet")["running"]:
        raise InvalidInputError("this codebook is already being fitted", file=str(job_dir))
    return start_cli_job(job_dir, ["sid", "fit", "--items", str(prepared), "--method", method, "--levels", str(levels), "--codes", str(codes),
                                   "--collision", "suffix", "--out", str(out)], kind="sid")


TAG_PREVIEW = "preview.parquet"


def start_tagging_job(prepared: str | Path, tags_dir: str | Path, item_ids: list[int], job_dir: str | Path, *, model: str | None = None) -> dict[str, Any]:
    """LLM tags for the chosen items in the background (8 items took ~11 minutes behind a spinner);
    the page reads `preview.parquet` from `job_dir` when the job has finished."""
    job_dir = Path(job_dir)
    if not item_ids:
        raise InvalidInputError("choose at least one item", field="items")
    if tagging_job_status(job_dir)["running"]:
        raise InvalidInputError("a tagging job is already running for this dataset", file=str(job_dir))
    from recsage.pipelines.tagcf import tag_preview_partial  # TagCF's imports only when tagging

    (job_dir / TAG_PREVIEW).unlink(missing_ok=True)
    tag_preview_partial(job_dir / TAG_PREVIEW).unlink(missing_ok=True)  # a new selection starts afresh
    cmd = ["tagcf", "preview", "--data", str(prepared), "--tags", str(tags_dir), "--items", ",".join(str(int(i)) for i in item_ids),
           "--out", str(job_dir / TAG_PREVIEW)]
    if model:
        cmd += ["--model", model]
    return start_cli_job(job_dir, cmd, kind="tagging", total=len(item_ids), items=[int(i) for i in item_ids])


def tagging_job_status(job_dir: str | Path) -> dict[str, Any]:
    """`cli_job_status` plus items done so far (from the job's partial output) and the total."""
    from recsage.pipelines.tagcf import tag_preview_partial

    job_dir = Path(job_dir)
    status = cli_job_status(job_dir, job_dir / TAG_PREVIEW)
    partial = tag_preview_partial(job_dir / TAG_PREVIEW)
    done = len(pd.read_parquet(partial, columns=["item_id"])) if partial.exists() else 0
    total = status["total"] or 0
    return {**status, "done": total if status["finished"] else done, "total": total}


def tagging_job_result(job_dir: str | Path) -> pd.DataFrame | None:
    """The finished preview of the last tagging job, or None while there is none."""
    job_dir = Path(job_dir)
    return pd.read_parquet(job_dir / TAG_PREVIEW) if cli_job_status(job_dir, job_dir / TAG_PREVIEW)["finished"] else None


def cli_job_status(job_dir: str | Path, output: str | Path) -> dict[str, Any]:
    """Running or not, finished (its `output` written after it started), elapsed, the log's tail,
    and the expected item count from job.json (`total`, None when the job did not say)."""
    job_dir = Path(job_dir)
    meta_path = job_dir / "job.json"
    if not meta_path.exists():
        return {"exists": False, "running": False, "finished": Path(output).exists(), "elapsed": 0.0, "log_tail": [], "total": None}
    meta = json.loads(meta_path.read_text())
    running = _alive(int(meta["pid"]))
    log = job_dir / "job.log"
    finished = not running and Path(output).exists() and Path(output).stat().st_mtime >= meta["started"]
    return {"exists": True, "running": running, "finished": finished, "crashed": not running and not finished,
            "elapsed": round(time.time() - meta["started"], 1), "log_tail": log.read_text(errors="replace").splitlines()[-8:] if log.exists() else [],
            "total": meta.get("total")}


def job_status(job_dir: str | Path) -> dict[str, Any]:
    """Progress from the job's files: items finished/failed so far, running or not, the log's tail."""
    job_dir = Path(job_dir)
    meta_path = job_dir / "job.json"
    if not meta_path.exists():
        return {"exists": False, "running": False, "pid": None, "done": 0, "failed": 0, "total": 0}
    meta = json.loads(meta_path.read_text())
    rows, _ = _finished(job_dir).read()
    failed = sum(r["status"] != "ok" for r in rows.values())
    running = _alive(int(meta["pid"]))
    log = job_dir / "job.log"
    tail = log.read_text(errors="replace").splitlines()[-8:] if log.exists() else []
    finished = not running and (job_dir / OUTPUT).exists() and (job_dir / OUTPUT).stat().st_mtime >= meta["started"]
    return {"exists": True, "running": running, "pid": meta["pid"], "done": len(rows), "failed": failed, "total": meta["total"],
            "finished": finished, "crashed": not running and not finished, "elapsed": round(time.time() - meta["started"], 1),
            "log_tail": tail, "styles": meta.get("styles", [])}


def job_results(job_dir: str | Path) -> pd.DataFrame:
    """The finished output, or what the parts hold so far while the job runs."""
    from recsage.pipelines.push import push_frame

    job_dir = Path(job_dir)
    meta = job_dir / "job.json"
    running = meta.exists() and _alive(int(json.loads(meta.read_text())["pid"]))  # not job_status: it would read every part again
    if (job_dir / OUTPUT).exists() and not running:
        return pd.read_parquet(job_dir / OUTPUT)
    return push_frame(_finished(job_dir).results())


def stop_job(job_dir: str | Path) -> bool:
    """Stops a running job (its finished items stay; launching again resumes)."""
    status = job_status(job_dir)
    if not status["running"]:
        return False
    os.killpg(os.getpgid(int(status["pid"])), 15)
    return True
