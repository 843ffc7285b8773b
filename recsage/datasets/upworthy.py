"""Upworthy Research Archive headline A/B tests (CC BY 4.0, Matias et al. 2021)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsage.core.errors import InvalidInputError
from recsage.datasets.tables import Dataset
from recsage.datasets.tabular import read_table, record_label, require_columns
from recsage.datasets.validation import ValidationReport

LICENCE = "CC BY 4.0 (cite Matias et al., Scientific Data 2021)"
REQUIRED = ["clickability_test_id", "headline", "impressions", "clicks"]


def load_upworthy(path: str | Path, *, report: ValidationReport | None = None, encoding: str = "utf-8") -> Dataset:
    """One row per package (variant) of a test; a folder picks the Parquet file (else the CSV)."""
    path = Path(path)
    report = report or ValidationReport()
    if path.is_dir():
        hits = sorted(path.glob("*.parquet")) or sorted(path.glob("*.csv*"))
        if not hits:
            raise InvalidInputError("no .parquet or .csv file", file=str(path))
        path = hits[0]
    df = read_table(path, encoding)
    require_columns(df, REQUIRED, file=str(path))
    bad = np.zeros(len(df), dtype=bool)
    for col in REQUIRED:
        missing = df[col].isna().to_numpy().copy()
        if col == "headline":
            missing |= df[col].astype(str).str.strip().eq("").to_numpy()
        for pos in np.flatnonzero(missing & ~bad):
            report.reject(InvalidInputError("missing required value", file=str(path), record=record_label(df, pos), field=col))
        bad |= missing
    for col in ("impressions", "clicks"):
        num = pd.to_numeric(df[col], errors="coerce")
        wrong = (num.isna() | (num < 0)).to_numpy() & ~bad
        for pos in np.flatnonzero(wrong):
            report.reject(InvalidInputError(f"expected a count >= 0, got {df[col].iat[pos]!r}", file=str(path), record=record_label(df, pos), field=col))
        bad |= wrong
    over = (pd.to_numeric(df["clicks"], errors="coerce") > pd.to_numeric(df["impressions"], errors="coerce")).to_numpy() & ~bad
    for pos in np.flatnonzero(over):
        report.reject(InvalidInputError("clicks exceed impressions", file=str(path), record=record_label(df, pos), field="clicks"))
    bad |= over
    df = df.loc[~bad].reset_index(drop=True)
    exp = pd.DataFrame(
        {
            "test_id": df["clickability_test_id"].astype(str),
            "variant": df.groupby("clickability_test_id").cumcount().astype(np.int64),
            "headline": df["headline"].astype(str),
            "lede": df.get("lede", pd.Series([""] * len(df))).fillna("").astype(str),
            "excerpt": df.get("excerpt", pd.Series([""] * len(df))).fillna("").astype(str),
            "impressions": pd.to_numeric(df["impressions"]).astype(np.int64),
            "clicks": pd.to_numeric(df["clicks"]).astype(np.int64),
        }
    )
    for extra in ("eyecatcher_id", "test_week", "winner", "significance"):
        if extra in df:
            exp[extra] = df[extra].to_numpy()
    exp["ctr"] = exp["clicks"] / exp["impressions"].where(exp["impressions"] > 0)
    return Dataset(
        name="upworthy",
        experiments=exp,
        meta={"source": str(path), "loader": "upworthy", "licence": LICENCE, "validation": report.to_dict()},
    )
