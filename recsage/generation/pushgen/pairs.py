"""Headline pairs from Upworthy A/B tests: which of two copies for the same story got more clicks.

Variants of one test that share a headline (they differ in image or lede) are pooled into one
copy; pairs are formed only between different headlines. Each pair carries a two-proportion
z-test so training and evaluation can be restricted to pairs whose CTR difference is significant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from recsage.core.errors import InvalidInputError

REQUIRED = ("test_id", "headline", "impressions", "clicks")


@dataclass(frozen=True)
class PairStats:
    tests: int
    tests_with_distinct_headlines: int
    tests_same_headline: int
    pairs: int
    significant_pairs: int

    def to_dict(self) -> dict[str, int]:
        return self.__dict__.copy()


def build_pairs(experiments: pd.DataFrame, *, alpha: float = 0.05) -> tuple[pd.DataFrame, PairStats]:
    """One row per unordered pair of distinct headlines in a test, oriented so `a` is listed first
    in the data; `label` = 1 when a's CTR is higher. Exact CTR ties are dropped (no winner)."""
    missing = [c for c in REQUIRED if c not in experiments]
    if missing:
        raise InvalidInputError(f"experiments table lacks columns {missing}", field=missing[0])
    exp = experiments.assign(headline=experiments["headline"].astype(str).str.strip())
    copies = exp.groupby(["test_id", "headline"], sort=False, as_index=False).agg(impressions=("impressions", "sum"), clicks=("clicks", "sum"))
    copies = copies[copies["impressions"] > 0]
    n_tests = exp["test_id"].nunique()
    per_test = copies.groupby("test_id")["headline"].count()
    rows = []
    for test_id, grp in copies.groupby("test_id", sort=False):
        g = grp.to_numpy()
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                rows.append((test_id, g[i][1], g[j][1], g[i][2], g[i][3], g[j][2], g[j][3]))
    pairs = pd.DataFrame(rows, columns=["test_id", "a", "b", "impressions_a", "clicks_a", "impressions_b", "clicks_b"])
    pairs["ctr_a"] = pairs["clicks_a"] / pairs["impressions_a"]
    pairs["ctr_b"] = pairs["clicks_b"] / pairs["impressions_b"]
    pooled = (pairs["clicks_a"] + pairs["clicks_b"]) / (pairs["impressions_a"] + pairs["impressions_b"])
    se = np.sqrt(pooled * (1 - pooled) * (1 / pairs["impressions_a"] + 1 / pairs["impressions_b"]))
    pairs["z"] = np.where(se > 0, (pairs["ctr_a"] - pairs["ctr_b"]) / se.where(se > 0, 1), 0.0)
    pairs["p_value"] = 2 * norm.sf(np.abs(pairs["z"]))
    pairs["significant"] = pairs["p_value"] < alpha
    pairs = pairs[pairs["ctr_a"] != pairs["ctr_b"]].reset_index(drop=True)
    pairs["label"] = (pairs["ctr_a"] > pairs["ctr_b"]).astype(np.int64)
    stats = PairStats(n_tests, int((per_test > 1).sum()), int(n_tests - (per_test > 1).sum()), len(pairs), int(pairs["significant"].sum()))
    return pairs, stats


def split_of(test_id: str, valid: float = 0.1, test: float = 0.1) -> str:
    """Deterministic split by hashing the test id: no test contributes pairs to two splits."""
    u = int(hashlib.sha256(str(test_id).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test else "valid" if u < test + valid else "train"


def split_pairs(pairs: pd.DataFrame, valid: float = 0.1, test: float = 0.1) -> dict[str, pd.DataFrame]:
    which = pairs["test_id"].map(lambda t: split_of(t, valid, test))
    return {name: pairs[which == name].reset_index(drop=True) for name in ("train", "valid", "test")}


def balanced_orientation(pairs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Swap a random half so labels are balanced (AUC and accuracy then have a 0.5 chance level)."""
    rng = np.random.default_rng(seed)
    flip = rng.random(len(pairs)) < 0.5
    out = pairs.copy()
    for x, y in (("a", "b"), ("impressions_a", "impressions_b"), ("clicks_a", "clicks_b"), ("ctr_a", "ctr_b")):
        out.loc[flip, [x, y]] = pairs.loc[flip, [y, x]].to_numpy()
    out.loc[flip, "z"] = -pairs.loc[flip, "z"]
    out["label"] = (out["ctr_a"] > out["ctr_b"]).astype(np.int64)
    return out
