"""bench_onereason's LLM part: the embedded LLM words chains of real Amazon Scientific users; the
verifier's verdicts, the throughput, and the size and shape of the exported SFT set.

The verbalised chains are an artifact (results/onereason-verbalised/: user ids, verdicts, kept
text, problems; resumable), so a re-run only words chains it has not worded yet.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from _common import measure


def verbalise_rows(prepared: Path, out_dir: Path, n_chains: int, work: Path, seed: int = 0) -> list[dict]:
    from recsage.datasets import Dataset
    from recsage.generation.onereason.chains import chains_frame
    from recsage.llm import get_backend
    from recsage.llm.registry import LLMConfig
    from recsage.pipelines.onereason import export_sft, interest_vocab, item_titles, training_chains, verifier_for
    from recsage.generation.onereason.verbalise import ChainVerbaliser, read_verbalised, verbalise_chains_batch

    ds = Dataset.load(prepared)
    chains, rejected = training_chains(ds)
    pick = np.random.default_rng(seed).choice(len(chains), size=min(n_chains, len(chains)), replace=False)
    sample = [chains[i] for i in sorted(pick)]
    out_dir.mkdir(parents=True, exist_ok=True)
    chains_frame(sample).to_parquet(out_dir / "chains.parquet", index=False)
    backend = get_backend(config=LLMConfig.from_env())
    verbaliser = ChainVerbaliser(backend, verifier_for(ds, interest_vocab(ds)), item_titles(ds))
    rows = []
    for hindsight, n in ((False, len(sample)), (True, min(4, len(sample)))):
        row = {"dataset": ds.name, "method": "verbalise" + ("-hindsight" if hindsight else ""), "mode": "llm", "seed": seed}
        with measure(row):
            meta = verbalise_chains_batch(verbaliser, sample[:n], out_dir / ("hindsight" if hindsight else "default"), hindsight=hindsight, progress=True)
        frame = read_verbalised(out_dir / ("hindsight" if hindsight else "default"))
        counts = Counter(frame["status"])
        reasons = Counter(p["reason"].split(",")[0][:60] for ps in frame.get("problems", []) if isinstance(ps, list) for p in ps)
        total = max(1, len(frame))
        row.update({"chains": len(frame), "model": meta["model"], "prompt": meta["prompt"], "hindsight": hindsight,
                    "verifier_pass_rate": round(counts.get("verified", 0) / total, 3), "repaired_rate": round(counts.get("repaired", 0) / total, 3),
                    "rejected_rate": round(counts.get("rejected", 0) / total, 3), "failed_rate": round(counts.get("failed", 0) / total, 3),
                    "kept_rate": round((counts.get("verified", 0) + counts.get("repaired", 0)) / total, 3),
                    "chains_per_minute_this_run": meta["chains_per_minute"], "new_this_run": meta["new"],
                    "top_problems": dict(reasons.most_common(5))})
        rows.append(row)
        (out_dir / ("hindsight" if hindsight else "default") / "meta.json").write_text(json.dumps(meta, indent=2))
    # the SFT set over the whole catalogue and every training chain (template wording, the LLM's where kept)
    row = {"dataset": ds.name, "method": "export-sft", "mode": "-", "seed": seed}
    tmp = work / "sft-export"
    cot = tmp / "cot"
    t = time.perf_counter()
    with measure(row):
        from recsage.pipelines.onereason import build_cot

        build_cot(prepared, cot)
        stats = export_sft(prepared, Path(prepared).parent / "sid-scientific", cot, tmp / "sft")
    row.update({"sft_records": stats["records"], "by_task": stats["by_task"], "mean_chars": stats["mean_chars"],
                "jsonl_mb": round((tmp / "sft" / "sft.jsonl").stat().st_size / 2**20, 1), "chains_rejected": dict(rejected),
                "build_seconds": round(time.perf_counter() - t, 1)})
    rows.append(row)
    return rows
