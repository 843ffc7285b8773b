"""LightGBM LambdaRank over (query, candidate) feature matrices: the ranking stage's learner.

It knows nothing about retrievers or where features come from: it takes a matrix, the query
group sizes and 0/1 labels, so any feature builder (recsage's or a user's) can feed it. The
saved model is LightGBM's own text format plus config.json — no pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsage.core.config import ConfigMixin, read_saved_meta
from recsage.core.errors import InvalidInputError, NotFittedError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class LambdaRankerConfig(ConfigMixin):
    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 63
    min_child_samples: int = 50
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambdarank_truncation_level: int = 100  # pairs below this rank get no gradient (100 measured better than 20 on Beauty)
    early_stopping_rounds: int = 40
    min_iterations: int = 30  # the early-stopping slice can be a few dozen queries: never keep fewer trees
    # Below this many training queries: a compact model and no early-stopping slice. On ML-100K
    # (~550 usable validation queries) a 10% slice is ~55 queries, and the iteration it picked
    # swung NDCG@10 between .08 and .12 across seeds; on Beauty (~7,000) its ~700 queries still
    # picked anywhere from 38 to 131 trees between runs of one seed. The number of rounds is chosen by k-fold
    # cross-validation over all the training queries instead (`compact_rounds=0`), because the right
    # number differs by data: a fixed 100 rounds underfit Scientific (~3,500 queries; the CV curve
    # still rose at 600) and 300 overfit ML-100K (its CV curve peaks near 50).
    compact_below_queries: int = 20000
    compact_rounds: int = 0  # 0: chosen by CV (up to compact_max_rounds); > 0: fixed
    compact_max_rounds: int = 400
    compact_cv_folds: int = 3
    compact_num_leaves: int = 7
    compact_learning_rate: float = 0.05
    # From this many queries the compact model learns at twice compact_learning_rate: on Beauty
    # (~7,000 queries) the CV curve at .05 was still rising at the 400-round cap (it picked 387);
    # at .1 it peaks near 300 inside the same cap, so the CV cost stays that of 400 rounds.
    compact_faster_above_queries: int = 5000
    eval_at: int = 10
    n_threads: int = 2
    seed: int = 0


class LambdaRanker:
    """`fit(X, y, groups, valid=(Xv, yv, gv))` → `predict(X)`, `contributions(X)` (per-feature SHAP-style
    terms from LightGBM's `pred_contrib`), `feature_importance()` (total gain per feature)."""

    def __init__(self, config: LambdaRankerConfig | None = None) -> None:
        self.config = config or LambdaRankerConfig()

    def is_compact(self, n_queries: int) -> bool:
        return n_queries < self.config.compact_below_queries

    def _params(self, n_queries: int) -> dict[str, Any]:
        c = self.config
        rate = c.compact_learning_rate * (2.0 if n_queries >= c.compact_faster_above_queries else 1.0)
        compact = ({"num_leaves": c.compact_num_leaves, "min_child_samples": 10, "learning_rate": rate, "feature_fraction": 0.6}
                   if self.is_compact(n_queries) else {})
        return {
            "objective": "lambdarank", "metric": "ndcg", "eval_at": [c.eval_at], "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves, "min_child_samples": c.min_child_samples, "feature_fraction": c.feature_fraction,
            "bagging_fraction": c.bagging_fraction, "bagging_freq": c.bagging_freq, "lambdarank_truncation_level": c.lambdarank_truncation_level,
            "num_threads": c.n_threads, "seed": c.seed, "deterministic": True, "force_row_wise": True, "verbosity": -1,
        } | compact

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, feature_names: list[str],
            valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, query_folds: np.ndarray | None = None) -> LambdaRanker:
        """`query_folds`: a fold number per query (e.g. by user) for choosing a compact model's rounds;
        random query folds when not given."""
        import lightgbm as lgb

        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(feature_names):
            raise InvalidInputError(f"feature matrix has shape {x.shape} but {len(feature_names)} feature names", field="features")
        if int(np.sum(groups)) != len(x) or len(y) != len(x):
            raise InvalidInputError(f"group sizes sum to {int(np.sum(groups))} and labels number {len(y)}, rows {len(x)}", field="groups")
        if not np.any(y > 0):
            raise InvalidInputError("no positive label in the training queries (no candidate set contains its target)", field="labels")
        self.compact_ = self.is_compact(len(groups))
        self.params_ = self._params(len(groups))
        rounds = self.config.n_estimators
        if self.compact_:
            valid = None
            rounds = self.config.compact_rounds
            if rounds <= 0:
                rounds, self.cv_curve_ = self.cv_rounds(x, y, groups, query_folds)
        train = lgb.Dataset(x, label=y, group=groups, feature_name=list(feature_names), free_raw_data=True)
        sets, names, callbacks = [], [], []
        if valid is not None:
            sets.append(lgb.Dataset(np.asarray(valid[0], dtype=np.float32), label=valid[1], group=valid[2], reference=train))
            names.append("valid")
            callbacks.append(lgb.early_stopping(self.config.early_stopping_rounds, verbose=False))
        evals: dict = {}
        callbacks.append(lgb.record_evaluation(evals))
        self.booster_ = lgb.train(self.params_, train, num_boost_round=rounds, valid_sets=sets, valid_names=names,
                                  callbacks=callbacks)
        self.feature_names_ = list(feature_names)
        key = f"ndcg@{self.config.eval_at}"
        self.valid_curve_ = [float(v) for v in evals.get("valid", {}).get(key, [])]
        floor = min(self.config.min_iterations, len(self.valid_curve_))
        if self.valid_curve_:
            self.best_iteration_ = floor + int(np.argmax(self.valid_curve_[floor - 1 :])) if floor else int(np.argmax(self.valid_curve_)) + 1
        else:
            self.best_iteration_ = int(self.booster_.current_iteration())
        return self

    def cv_rounds(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, query_folds: np.ndarray | None = None) -> tuple[int, list[float]]:
        """The compact model's number of rounds: the peak of the k-fold cross-validated NDCG curve
        (each fold's held-out queries scored by LightGBM at every round, weighted by their count).
        LightGBM's NDCG counts a query without a positive as 1; the caller's queries all have one."""
        import lightgbm as lgb

        c = self.config
        groups = np.asarray(groups)
        if query_folds is None:
            query_folds = np.random.default_rng(c.seed).permutation(len(groups)) % c.compact_cv_folds
        query_folds = np.asarray(query_folds)
        if len(query_folds) != len(groups):
            raise InvalidInputError(f"{len(query_folds)} query folds for {len(groups)} queries", field="query_folds")
        row_fold = np.repeat(query_folds, groups)
        params = self._params(len(groups))
        total = np.zeros(c.compact_max_rounds)
        for f in np.unique(query_folds):
            held = row_fold == f
            if held.all():
                continue
            train = lgb.Dataset(x[~held], label=y[~held], group=groups[query_folds != f], free_raw_data=True)
            test = lgb.Dataset(x[held], label=y[held], group=groups[query_folds == f], reference=train)
            evals: dict = {}
            lgb.train(params, train, num_boost_round=c.compact_max_rounds, valid_sets=[test], valid_names=["cv"],
                      callbacks=[lgb.record_evaluation(evals)])
            total += np.asarray(evals["cv"][f"ndcg@{c.eval_at}"]) * int((query_folds == f).sum())
        curve = total / max(len(groups), 1)
        floor = min(c.min_iterations, len(curve))
        return floor + int(np.argmax(curve[floor - 1 :])), [round(float(v), 5) for v in curve]

    def _check(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "booster_"):
            raise NotFittedError("LambdaRanker is not fitted; call fit() first")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names_):
            raise InvalidInputError(f"expected {len(self.feature_names_)} features, got shape {x.shape}", field="features")
        return x

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.booster_.predict(self._check(x), num_iteration=self.best_iteration_, num_threads=self.config.n_threads)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(n, n_features + 1): each feature's additive share of the score, last column the bias."""
        return self.booster_.predict(self._check(x), num_iteration=self.best_iteration_, pred_contrib=True)

    def feature_importance(self) -> dict[str, float]:
        if not hasattr(self, "booster_"):
            raise NotFittedError("LambdaRanker is not fitted; call fit() first")
        gain = self.booster_.feature_importance("gain", iteration=self.best_iteration_)
        return {n: float(g) for n, g in zip(self.feature_names_, gain)}

    # ---- persistence: LightGBM text model + config.json ----
    def save_pretrained(self, directory: str | Path) -> Path:
        if not hasattr(self, "booster_"):
            raise NotFittedError("LambdaRanker is not fitted; call fit() first")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(d / "ranker.txt"), num_iteration=self.best_iteration_)
        (d / "config.json").write_text(json.dumps({"class": "lambdarank", "format_version": FORMAT_VERSION, "params": self.config.to_dict(),
                                                   "feature_names": self.feature_names_, "best_iteration": self.best_iteration_,
                                                   "valid_curve": self.valid_curve_}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> LambdaRanker:
        import lightgbm as lgb

        d = Path(directory)
        meta = read_saved_meta(d, "lambdarank", FORMAT_VERSION, what="ranker")
        obj = cls(LambdaRankerConfig.from_dict(meta["params"]))
        try:
            obj.booster_ = lgb.Booster(model_file=str(d / "ranker.txt"))
        except lgb.basic.LightGBMError as e:
            raise InvalidInputError(f"not a readable LightGBM model ({str(e).splitlines()[0][:200]})", file=str(d / "ranker.txt")) from None
        obj.feature_names_ = list(meta["feature_names"])
        if obj.booster_.feature_name() != obj.feature_names_:
            raise InvalidInputError("ranker.txt features differ from config.json feature_names", file=str(d / "ranker.txt"), field="feature_names")
        obj.best_iteration_ = int(meta["best_iteration"])
        obj.valid_curve_ = meta.get("valid_curve", [])
        return obj
