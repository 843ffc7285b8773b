"""Kill a real `recsage` batch command with SIGKILL at random points, resume it, and count.

Shared by `tests/test_batch_kill.py` (against the scripted server in `_fake_openai.py`) and
`benchmarks/bench_reliability.py` (against the real embedded model). A kill lands after a random
number of newly written output lines (0 = a random moment before the next line: start-up, a
vocabulary phase, a final write); the command is then rerun to the end, and its output lines are
counted against the input ids: lost (an id with no line), duplicated (an id with more than one).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def job_lines(job_dir: Path) -> list[dict[str, Any]]:
    """Every readable output line of every BatchJob part under `job_dir`."""
    rows = []
    for part in sorted(Path(job_dir).rglob("parts/part-*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut by the kill: the job rewrites that record
    return rows


def outcomes(rows: list[dict[str, Any]], folder: Path) -> dict[str, tuple[str, Any]]:
    """(status, result) per id, with the output folder's own path written as <out> (a result that
    names a file it wrote is the same result in another folder)."""
    return {str(r["id"]): (r["status"], json.loads(json.dumps(r["result"]).replace(str(folder), "<out>"))) for r in rows}


def recsage_argv(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "recsage.cli", *args]


def run_to_end(argv: Sequence[str], env: dict[str, str], timeout: float) -> None:
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(argv[3:6])} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")


def kill_and_resume(argv_for: Callable[[Path], list[str]], out: Path, expected_ids: set[str] | None, *, env: dict[str, str] | None = None,
                    kills: int = 3, seed: int = 0, max_new_lines: int = 3, timeout: float = 600,
                    reference: Path | None = None, reference_env: dict[str, str] | None = None) -> dict[str, Any]:
    """`argv_for(out)` is the command writing into `out`. Returns kills landed, lost, duplicated,
    failed records, and (with `reference`, a folder for an uninterrupted run of the same command)
    whether every record's result equals the uninterrupted run's; `reference_env` is laid over `env`
    for it, e.g. its own LLM cache so that it recomputes every answer). Without `expected_ids` (a job that
    samples its own records) the uninterrupted run's ids are the expected ones."""
    env = {**os.environ, **(env or {})}
    rng = random.Random(seed)
    t0 = time.perf_counter()
    landed = 0
    for _ in range(kills):
        start = len(job_lines(out))
        target = start + rng.randint(0, max_new_lines)
        pause = rng.uniform(0.3, 2.0)
        proc = subprocess.Popen(argv_for(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        began = time.time()
        while proc.poll() is None and time.time() - began < timeout:
            n = len(job_lines(out))
            # 0 new lines: a random moment before the next line is written (at the latest, as it is)
            if (target > start and n >= target) or (target == start and (n > start or time.time() - began >= pause)):
                break
            time.sleep(0.02)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            landed += 1
        proc.wait()
    run_to_end(argv_for(out), env, timeout)
    seconds = time.perf_counter() - t0
    rows = job_lines(out)
    ids = Counter(str(r["id"]) for r in rows)
    theirs = None
    if reference is not None:
        run_to_end(argv_for(reference), {**env, **(reference_env or {})}, timeout)
        theirs = outcomes(job_lines(reference), reference)
    if expected_ids is None:
        if theirs is None:
            raise ValueError("without expected_ids a reference run is needed")
        expected_ids = set(theirs)
    report: dict[str, Any] = {
        "kills": landed, "records": len(expected_ids), "lost": len(expected_ids - set(ids)),
        "duplicated": sum(c - 1 for c in ids.values() if c > 1), "unexpected": len(set(ids) - expected_ids),
        "failed": sum(r["status"] != "ok" for r in rows), "equal_to_uninterrupted": None, "seconds": round(seconds, 1),
    }
    if theirs is not None:
        mine = outcomes(rows, out)
        report["equal_to_uninterrupted"] = mine == theirs
        report["differing"] = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))[:5]
    return report


# ---- the batch commands, as the test and the benchmark run them ----
BATCH_COMMANDS = ("push generate", "tagcf extract", "tagcf read-roles", "lcu annotate", "onereason build-cot --verbalise")


def prepare_batch_inputs(root: Path, bundled: Path, shared: Path, n: int) -> dict[str, Path]:
    """Inputs for `n` records per command: the bundled Scientific sample and MovieLens-100K
    prepared, an items file, a user list; the Reddit comments are read where they are."""
    from recsage.pipelines import prepare_dataset

    root.mkdir(parents=True, exist_ok=True)
    paths = {"sci": root / "sci", "ml": root / "ml", "items": root / "items.jsonl", "users": root / "users.txt",
             "reddit": shared / "reddit-college-comments"}
    if not paths["sci"].exists():
        prepare_dataset("scientific", bundled / "scientific-sample", paths["sci"])
    if not paths["ml"].exists():
        prepare_dataset("movielens-100k", shared / "movielens-100k", paths["ml"])
    items = json.loads((bundled / "scientific-sample" / "Scientific.item.json").read_text())
    paths["items"].write_text("".join(json.dumps({"item_id": k, "title": items[k]["title"]}) + "\n" for k in sorted(items, key=int)[:n]))
    paths["users"].write_text("".join(f"{u}\n" for u in range(1, n + 1)))
    return paths


def batch_command(name: str, inputs: dict[str, Path], llm: list[str], n: int) -> tuple[Callable[[Path], list[str]], set[str] | None]:
    """(argv for an output folder, the input ids the job must cover — None when the job samples its own)."""
    if name == "push generate":
        ids = {json.loads(line)["item_id"] for line in inputs["items"].read_text().splitlines()}
        return (lambda out: recsage_argv(["push", "generate", "--items", str(inputs["items"]), "--out", str(out / "push.parquet"),
                                          "--styles", "question", "--n", "2", "--text-fields", "title", *llm]), ids)
    if name == "tagcf extract":
        from recsage.datasets import Dataset
        from recsage.pipelines.tagcf import popular_items

        ids = {str(i) for i in popular_items(Dataset.load(inputs["sci"])).head(n)["item_id"]}
        return (lambda out: recsage_argv(["tagcf", "extract", "--data", str(inputs["sci"]), "--out", str(out), "--limit", str(n), "--no-extend", *llm]), ids)
    if name == "tagcf read-roles":
        ids = set(inputs["users"].read_text().split())
        return (lambda out: recsage_argv(["tagcf", "read-roles", "--data", str(inputs["ml"]), "--out", str(out), "--users", str(inputs["users"]), *llm]), ids)
    if name == "lcu annotate":
        return (lambda out: recsage_argv(["lcu", "annotate", "--data", str(inputs["reddit"]), "--out", str(out), "--n", str(n), "--max-threads", "60", *llm]),
                None)
    if name == "onereason build-cot --verbalise":
        return (lambda out: recsage_argv(["onereason", "build-cot", "--data", str(inputs["sci"]), "--out", str(out), "--verbalise", str(n), *llm]), None)
    raise KeyError(name)
