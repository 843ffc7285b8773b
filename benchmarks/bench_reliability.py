"""Reliability: every class of bad input ends in one clean error, and long jobs survive kill -9.

Run: .venv/bin/python benchmarks/bench_reliability.py
1. Bad input, by class: the table-driven tests (each case asserts exit code 2, no traceback, and the
   file / line / field named) are run with pytest's JUnit report; a passing case is clean, a failing
   one is counted with its first message line ("escaped").
2. Kill -9: a BatchJob child (the runner of push generate, tagcf extract, LCU annotate, OneReason
   verbalise and the feature shards) killed three times at random points, then resumed — lost and
   duplicated records counted against the input ids; and `recsage train` killed three times and
   resumed, compared with an uninterrupted run (the CLI-level test, whose assertions are the check).
Writes results/bench_reliability.json.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from _common import REPO, print_table, rss_mb, write_results

CLASSES = {  # class: test node ids (files or file::test)
    "bytes not text in the declared encoding, truncated/corrupt .gz, 16 MiB lines, deep nesting, BOM": ["tests/datasets/test_bad_bytes.py::test_unreadable_bytes_are_one_clean_error",
                                                                            "tests/datasets/test_bad_bytes.py::test_amazon_reviews_truncated_gz_names_file_and_line",
                                                                            "tests/datasets/test_bad_bytes.py::test_a_utf8_bom_is_accepted",
                                                                            "tests/datasets/test_bad_bytes.py::test_latin1_reads_with_encoding",
                                                                            "tests/app/test_pages.py::test_upload_errors_name_the_users_file"],
    "values that parse but are wrong (NaN, range, 64-bit overflow, empty file, shifted columns)": [
        "tests/datasets/test_bad_bytes.py::test_values_that_parse_but_are_wrong_are_refused_or_counted",
        "tests/datasets/test_bad_bytes.py::test_an_empty_ratings_file_is_refused", "tests/datasets/test_validation.py"],
    "corrupt artifacts (weights, config.json, Parquet, checkpoints, SID tables)": ["tests/test_corrupt_artifacts.py"],
    "invalid JSON Schema files (llm generate --schema, playground)": ["tests/llm/test_schema_files.py",
                                                                       "tests/app/test_pages.py::test_llm_playground_refuses_a_bad_schema_without_generating"],
    "CLI parameters out of range / wrong type": ["tests/test_cli_params.py"],
    "batch requests (unknown ids, missing --out)": ["tests/test_recommend_batch.py::test_bad_batch_requests_are_clean_errors",
                                                    "tests/test_recommend_batch.py::test_evaluate_scores_user_supplied_queries"],
    "two writers into one --out": ["tests/test_locks.py"],
}


def run_class(nodes: list[str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".xml") as f:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={f.name}", *nodes], cwd=REPO,
                       capture_output=True, text=True)
        seconds = time.perf_counter() - t
        cases = list(ET.parse(f.name).getroot().iter("testcase"))
    escaped = []
    for c in cases:
        bad = c.find("failure") if c.find("failure") is not None else c.find("error")
        if bad is not None:
            escaped.append(f"{c.get('name')}: {(bad.get('message') or '').splitlines()[0][:120] if bad.get('message') else ''}")
    return {"cases": len(cases), "clean": len(cases) - len(escaped), "escaped": len(escaped), "escaped_examples": escaped[:3], "seconds": round(seconds, 1)}


def batch_kill(kills: int = 3, n: int = 40, seed: int = 0) -> dict:
    """The BatchJob child killed `kills` times after random progress, then resumed to the end."""
    from recsage.llm import BatchJob

    rng = random.Random(seed)
    out = Path(tempfile.mkdtemp()) / "job"
    child_script = REPO / "tests" / "llm" / "_slow_batch.py"

    def lines() -> int:
        return sum(1 for p in (out / "parts").glob("*.jsonl") for line in p.read_text().splitlines() if line.strip()) if (out / "parts").exists() else 0

    t = time.perf_counter()
    done_kills = 0
    for _ in range(kills):
        start = lines()
        child = subprocess.Popen([sys.executable, str(child_script), str(out)])
        target = start + rng.randint(3, 10)
        deadline = time.time() + 60
        while time.time() < deadline and lines() < target and child.poll() is None:
            time.sleep(0.02)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            done_kills += 1
        child.wait()
    BatchJob(out, lambda r: {"double": r["x"] * 2}, progress=False).run(({"id": f"r{i}", "x": i} for i in range(n)), total=n)
    ids = Counter(json.loads(line)["id"] for p in (out / "parts").glob("*.jsonl") for line in p.read_text().splitlines() if line.strip())
    want = {f"r{i}" for i in range(n)}
    return {"job": "BatchJob (push / tagcf / LCU / OneReason / feature-shard runner), 40 records", "kills": done_kills,
            "lost": len(want - set(ids)), "duplicated": sum(c - 1 for c in ids.values() if c > 1), "equal_to_uninterrupted": None,
            "seconds": round(time.perf_counter() - t, 1)}


def train_kill() -> dict:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_train_kill.py"], cwd=REPO, capture_output=True, text=True)
    return {"job": "recsage train sasrec (CLI, real processes), 8 epochs", "kills": 3, "lost": None, "duplicated": None,
            "equal_to_uninterrupted": r.returncode == 0, "seconds": round(time.perf_counter() - t, 1)}


def main() -> None:
    rows = []
    for name, nodes in CLASSES.items():
        res = run_class(nodes)
        rows.append({"dataset": "synthetic bad inputs", "method": name, **res, "peak_mb": round(rss_mb()), "seed": None})
        print(rows[-1], flush=True)
    kill_rows = [batch_kill(seed=s) for s in (0, 1, 2)] + [train_kill()]
    for r in kill_rows:
        rows.append({"dataset": "kill -9", "method": r["job"], **r, "peak_mb": round(rss_mb()), "seed": None})
    print_table([r for r in rows if r["dataset"] != "kill -9"], ["method", "cases", "clean", "escaped", "seconds"], "bad input by class (clean = exit 2, no traceback, location named)")
    print_table(kill_rows, ["job", "kills", "lost", "duplicated", "equal_to_uninterrupted", "seconds"], "kill -9 and resume")
    write_results("bench_reliability", rows)


if __name__ == "__main__":
    main()
