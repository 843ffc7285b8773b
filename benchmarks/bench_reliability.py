"""Reliability: every class of bad input ends in one clean error, and long jobs survive kill -9.

Run: .venv/bin/python benchmarks/bench_reliability.py
1. Bad input, by class: the table-driven tests (each case asserts exit code 2, no traceback, and the
   file / line / field named) are run with pytest's JUnit report; a passing case is clean, a failing
   one is counted with its first message line ("escaped").
2. Kill -9: every batch command (push generate, tagcf extract, tagcf read-roles, lcu annotate,
   onereason build-cot --verbalise) run as a real `recsage` process on the real embedded 0.5B model,
   killed three times at random points and rerun — lost and duplicated records counted against the
   input ids, and every record compared with an uninterrupted run that has its own LLM cache (so it
   recomputes every answer); `features build-users` (no LLM) the same way through its test; the
   BatchJob runner alone (3 seeds); and `recsage train` killed three times and resumed, compared
   with an uninterrupted run (the CLI-level test, whose assertions are the check).

   .venv/bin/python benchmarks/bench_reliability.py [--records 6] [--model small] [--skip classes,commands]
Writes results/bench_reliability.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from _common import REPO, SHARED, print_table, rss_mb, write_results

sys.path.insert(0, str(REPO / "tests"))
from _kill import BATCH_COMMANDS, batch_command, kill_and_resume, prepare_batch_inputs  # noqa: E402

CLASSES = {  # class: test node ids (files or file::test)
    "bytes not text in the declared encoding, truncated/corrupt .gz, 16 MiB lines, deep nesting, BOM": ["tests/datasets/test_bad_bytes.py::test_unreadable_bytes_are_one_clean_error",
                                                                            "tests/datasets/test_bad_bytes.py::test_amazon_reviews_truncated_gz_names_file_and_line",
                                                                            "tests/datasets/test_bad_bytes.py::test_a_utf8_bom_is_accepted",
                                                                            "tests/datasets/test_bad_bytes.py::test_latin1_reads_with_encoding",
                                                                            "tests/datasets/test_bad_bytes.py::test_every_named_loader_names_the_line_and_takes_encoding",
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
    "batch command input files (push items, style libraries, user and role lists)": ["tests/test_command_inputs.py"],
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
    """The BatchJob child (`tests/llm/_slow_batch.py`, 40 records of ~50 ms) killed `kills` times
    after random progress, then rerun to the end."""
    child = REPO / "tests" / "llm" / "_slow_batch.py"
    r = kill_and_resume(lambda out: [sys.executable, str(child), str(out)], Path(tempfile.mkdtemp()) / "job", {f"r{i}" for i in range(n)},
                        kills=kills, seed=seed, timeout=60)
    return {"job": f"BatchJob (push / tagcf / LCU / OneReason / feature-shard runner), {n} records", **r}


def model_cache(root: Path) -> Path:
    """A fresh RECSAGE_CACHE (empty LLM cache) that reuses the assembled GGUF files."""
    from recsage.llm.embedded import cache_dir

    (root / "models").mkdir(parents=True, exist_ok=True)
    for f in (cache_dir() / "models").glob("*"):
        if not (root / "models" / f.name).exists():
            (root / "models" / f.name).symlink_to(f)
    return root


def command_kills(records: int, model: str) -> list[dict]:
    """Each batch command on the real embedded model: killed 3 times, rerun, compared."""
    work = REPO / ".recsage" / "bench" / "reliability"
    shutil.rmtree(work / "runs", ignore_errors=True)
    inputs = prepare_batch_inputs(work / "inputs", REPO / "data", SHARED, records)
    rows = []
    for seed, name in enumerate(BATCH_COMMANDS):
        argv_for, ids = batch_command(name, inputs, ["--model", model], records)
        root = work / "runs" / "-".join(name.split()[:2])
        r = kill_and_resume(argv_for, root / "run", ids, seed=seed, max_new_lines=2, timeout=1800,
                            env={"RECSAGE_CACHE": str(model_cache(root / "cache"))},
                            reference=root / "ref", reference_env={"RECSAGE_CACHE": str(model_cache(root / "ref-cache"))})
        rows.append({"job": f"recsage {name} (embedded {model}), {r['records']} records", **r})
        print(rows[-1], flush=True)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/features/test_tables.py::test_build_users_survives_kill_9"],
                         cwd=REPO, capture_output=True, text=True)
    rows.append({"job": "recsage features build-users (no LLM; its test), 12 shards", "kills": 3, "lost": 0 if res.returncode == 0 else None,
                 "duplicated": 0 if res.returncode == 0 else None, "equal_to_uninterrupted": res.returncode == 0, "seconds": round(time.perf_counter() - t, 1)})
    return rows


def train_kill() -> dict:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_train_kill.py"], cwd=REPO, capture_output=True, text=True)
    return {"job": "recsage train sasrec (CLI, real processes), 8 epochs", "kills": 3, "lost": None, "duplicated": None,
            "equal_to_uninterrupted": r.returncode == 0, "seconds": round(time.perf_counter() - t, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=6)
    ap.add_argument("--model", default="small")
    ap.add_argument("--skip", default="", help="comma list: classes, commands")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    previous = json.loads((REPO / "benchmarks" / "results" / "bench_reliability.json").read_text()) if (REPO / "benchmarks" / "results" / "bench_reliability.json").exists() else []
    rows = []
    if "classes" in skip:
        rows += [r for r in previous if r["dataset"] != "kill -9"]
    else:
        for name, nodes in CLASSES.items():
            res = run_class(nodes)
            rows.append({"dataset": "synthetic bad inputs", "method": name, **res, "peak_mb": round(rss_mb()), "seed": None})
            print(rows[-1], flush=True)
    kill_rows = [] if "commands" in skip else command_kills(args.records, args.model)
    kill_rows += [batch_kill(seed=s) for s in (0, 1, 2)] + [train_kill()]
    for r in kill_rows:
        rows.append({"dataset": "kill -9", "method": r["job"], **r, "peak_mb": round(rss_mb()), "seed": None})
    print_table([r for r in rows if r["dataset"] != "kill -9"], ["method", "cases", "clean", "escaped", "seconds"], "bad input by class (clean = exit 2, no traceback, location named)")
    print_table(kill_rows, ["job", "kills", "lost", "duplicated", "failed", "equal_to_uninterrupted", "seconds"], "kill -9 and resume")
    write_results("bench_reliability", rows)


if __name__ == "__main__":
    main()
