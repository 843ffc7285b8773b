"""`recsage demo`: the end-to-end job on the bundled sample, as a readable report.

Each capability adds its step here as it lands, so the demo always shows what recsage can do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from recsage.core.errors import InvalidInputError
from recsage.pipelines.data import load_split, prepare_dataset
from recsage.pipelines.recommend import evaluate_recommender


def bundled_data_dir() -> Path:
    """`data/` of the source checkout (the package is installed editable by the Makefile)."""
    here = Path(__file__).resolve().parents[2] / "data"
    if not (here / "scientific-sample").exists():
        raise InvalidInputError("bundled samples not found; pass --data pointing at recsage's data/ folder", file=str(here))
    return here


def run_demo(data_dir: str | Path | None = None, out_dir: str | Path = ".recsage/demo") -> dict[str, Any]:
    data_dir = Path(data_dir) if data_dir else bundled_data_dir()
    out_dir = Path(out_dir)
    report: dict[str, Any] = {"steps": []}

    t = time.perf_counter()
    sci = prepare_dataset("scientific", data_dir / "scientific-sample", out_dir / "scientific")
    up = prepare_dataset("upworthy", data_dir / "upworthy-sample", out_dir / "upworthy")
    report["datasets"] = {"scientific-sample": sci, "upworthy-sample": up}
    report["steps"].append(("prepare + validate datasets", time.perf_counter() - t))

    t = time.perf_counter()
    _, split = load_split(out_dir / "scientific", "loo")
    report["baselines"] = [
        evaluate_recommender(m, split, ks=(5, 10), progress=False) for m in ("popularity", "itemknn")
    ]
    report["steps"].append(("leave-one-out baselines", time.perf_counter() - t))
    report["out_dir"] = str(out_dir)
    return report
