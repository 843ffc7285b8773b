"""SID codebooks on real items: fit time, peak memory, utilisation, entropy, collisions,
reconstruction error, semantic consistency — ours next to the published indexes.

Run: .venv/bin/python benchmarks/bench_sid.py [--rqvae-epochs 300] [--emit DIR]
Amazon Scientific (4,344 items, text) uses MiniLM text embeddings; Beauty (12,101 items, no
text here) uses collaborative vectors (co-occurrence SVD on leave-one-out training sequences).
`--emit DIR` saves every codebook (SIDTable folders) for the recommender benchmark.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import measure, print_table, require_shared, write_results

from recsage.datasets import load_dataset
from recsage.pipelines.sid import build_semantic_ids, item_vectors
from recsage.tokenizers import codebook_report, collision_rate


def flat(rep: dict) -> dict:
    row = {k: rep.get(k) for k in ("collision_rate", "distinct_sids", "reconstruction_error", "semantic_consistency")}
    for lv in rep["levels"]:
        row[f"util_l{lv['level']}"] = round(lv["utilisation"], 3)
        row[f"entropy_l{lv['level']}"] = round(lv["entropy_norm"], 3)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rqvae-epochs", type=int, default=300)
    ap.add_argument("--emit", type=Path, default=None)
    a = ap.parse_args()
    shared = require_shared()
    rows = []
    for name, folder, source in (("scientific", "amazon-scientific", "text"), ("beauty", "amazon-beauty", "cf")):
        ds = load_dataset(name, shared / folder)
        vrow = {"dataset": name, "method": f"vectors:{source}", "n_items": ds.n_items}
        with measure(vrow):
            x = item_vectors(ds, source)
        rows.append(vrow)
        text_vecs = x if source == "text" else None
        for method in ("rqkmeans", "balanced", "rqvae"):
            for collision in (("suffix", "reassign") if method != "rqvae" else ("suffix",)):
                row = {"dataset": name, "method": method, "source": source, "collision": collision, "levels": "3x256", "n_items": ds.n_items}
                out = a.emit / name / f"{method}-{source}-{collision}" if a.emit else None
                with measure(row):
                    _, rep = build_semantic_ids(ds, method=method, source=source, levels=3, codes=256, collision=collision, out=out, vectors=x,
                                                epochs=a.rqvae_epochs if method == "rqvae" else None)
                row.update(flat(rep))
                row["fit_seconds"] = rep["fit_seconds"]
                row["collision_after"] = rep["collision"]["collision_rate_after"]
                row["final_levels"] = 4 if rep["collision"].get("fell_back_to_suffix") or collision == "suffix" else 3
                rows.append(row)
        if name == "scientific":  # S²GR-style fusion of text with co-occurrence, and pure CF, for comparison
            for source2 in ("fused", "cf"):
                row = {"dataset": name, "method": "balanced", "source": source2, "collision": "reassign", "levels": "3x256", "n_items": ds.n_items}
                out = a.emit / name / f"balanced-{source2}-reassign" if a.emit else None
                with measure(row):
                    # semantic check against the text vectors, not the vectors the codes came from
                    _, rep = build_semantic_ids(ds, method="balanced", source=source2, levels=3, codes=256, collision="reassign", out=out, text_vectors=x)
                row.update(flat(rep))
                row["fit_seconds"] = rep["fit_seconds"]
                row["collision_after"] = rep["collision"]["collision_rate_after"]
                rows.append(row)
        for idx_name, df in sorted(ds.sid_indexes.items()):
            codes = np.stack([np.asarray(s) for s in df.sort_values("item_id")["sid"]])
            rep = codebook_report(codes[:, :3], n_codes=256, text_vectors=text_vecs)
            row = {"dataset": name, "method": f"published:{idx_name}", "levels": f"{codes.shape[1]} levels (first 3 scored)", "n_items": ds.n_items}
            row.update(flat(rep))
            row["collision_rate_all_levels"] = collision_rate(codes)
            rows.append(row)
    cols = ["dataset", "method", "source", "collision", "fit_seconds", "seconds", "peak_mb", "util_l0", "util_l1", "util_l2", "entropy_l0", "entropy_l2",
            "collision_rate", "collision_after", "reconstruction_error", "semantic_consistency"]
    print_table([r for r in rows if not r["method"].startswith(("published", "vectors"))], cols, "Our codebooks, 3 levels x 256 codes (collision_rate = before dedup)")
    print_table([r for r in rows if r["method"].startswith("vectors")], ["dataset", "method", "n_items", "seconds", "peak_mb"], "Item vectors")
    print_table([r for r in rows if r["method"].startswith("published")], ["dataset", "method", "levels", "util_l0", "util_l1", "util_l2", "entropy_l0", "collision_rate", "collision_rate_all_levels", "semantic_consistency"],
                "Published indexes shipped with the data, scored on their first 3 levels the same way")
    print("\nTargets: RQ-KMeans fit <= 10 s on 2 cores; balanced collision rate before dedup <= 1%.")
    write_results("bench_sid", rows)


if __name__ == "__main__":
    main()
