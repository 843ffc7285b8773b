"""Supervised role identification: users whose profile is known teach a classifier what a
history says about the person behind it; held-out users get calibrated probabilities per role.

Why supervised: the graph's naive Bayes (`roles.graph_role_scores`) only sees topic shares, and
on MovieLens genre shares barely differ between occupations, so it ties the majority class. A
classifier can weigh every signal the history carries — topics, graph role scores, level-1 SID
interests, the text of what was watched, activity, and the LLM's reading of the history — and
learn which of them separate the roles of each group.

Each role group (occupation, age, gender) is its own single-label problem. Probabilities are
those of a multinomial logistic regression whose regularisation is chosen by cross-validated
log-loss (a proper scoring rule, so the chosen model is the best-calibrated of the grid);
`calibration_error` measures how well the confidences match the accuracy on held-out users.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from recsage.core.errors import InvalidInputError, NotFittedError


@dataclass(frozen=True)
class RoleClassifierConfig:
    """`Cs`: inverse regularisation strengths tried; `folds`: cross-validation folds for choosing C;
    `scale`: standardise every column first (dense blocks of mixed units); False for sparse rows
    already on one scale (`pipelines.roles.history_item_blocks`), which standardising would turn
    into large values for rarely seen items."""

    Cs: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3)
    scale: bool = True
    tol: float = 1e-3  # solver tolerance: 1e-4 tripled the time on sparse history rows
    folds: int = 3
    max_iter: int = 3000
    seed: int = 0


class RoleClassifier:
    """`fit(X, labels)` with one column per role group in `labels` (rows aligned with X);
    `predict_proba(X)` → {group: DataFrame of probabilities, columns = that group's roles}."""

    def __init__(self, config: RoleClassifierConfig | None = None) -> None:
        self.config = config or RoleClassifierConfig()

    def fit(self, x: np.ndarray, labels: pd.DataFrame) -> RoleClassifier:
        x = _as_matrix(x)
        if x.shape[0] != len(labels):
            raise InvalidInputError(f"{x.shape[0]} feature rows but {len(labels)} label rows", field="labels")
        if not np.isfinite(x.data if sp.issparse(x) else x).all():
            raise InvalidInputError("role features contain NaN or infinite values", field="features")
        self.models_: dict[str, Any] = {}
        self.chosen_C_: dict[str, float] = {}
        self.cv_log_loss_: dict[str, float] = {}  # of the chosen C on the training users (NaN when not cross-validated)
        for group in labels.columns:
            y = labels[group].astype(str).to_numpy()
            counts = pd.Series(y).value_counts()
            if len(counts) < 2:
                raise InvalidInputError(f"role group {group!r} has a single class in training ({counts.index[0]!r})", field=group)
            folds = int(min(self.config.folds, counts.min())) if counts.min() >= 2 else 0
            scaler = [StandardScaler()] if self.config.scale else []
            if folds >= 2:
                # the regularisation path per fold, warm-started from C to C (3x faster than a grid
                # search on 3,364 sparse columns × 21 roles); the scaler sees every training user's
                # features, never a label
                cv = StratifiedKFold(folds, shuffle=True, random_state=self.config.seed)
                with warnings.catch_warnings():  # scikit-learn 1.9 announces simpler fitted attributes (read either way below)
                    warnings.simplefilter("ignore", FutureWarning)
                    model = make_pipeline(*scaler, LogisticRegressionCV(Cs=list(self.config.Cs), cv=cv, scoring="neg_log_loss",
                                                                         max_iter=self.config.max_iter, tol=self.config.tol)).fit(x, y)
                lr = model[-1]
                self.chosen_C_[group] = float(np.ravel(lr.C_)[0])
                scores = next(iter(lr.scores_.values())) if isinstance(lr.scores_, dict) else lr.scores_  # one array per class, or one
                self.cv_log_loss_[group] = float(-np.max(np.asarray(scores).reshape(-1, len(self.config.Cs)).mean(axis=0)))
                self.models_[group] = model
            else:  # a role seen once cannot be cross-validated: the grid's middle value
                c = float(self.config.Cs[len(self.config.Cs) // 2])
                model = make_pipeline(*scaler, LogisticRegression(C=c, max_iter=self.config.max_iter, tol=self.config.tol)).fit(x, y)
                self.chosen_C_[group], self.models_[group], self.cv_log_loss_[group] = c, model, float("nan")
        return self

    def _check(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError("RoleClassifier is not fitted: call fit(X, labels) first")

    @property
    def groups(self) -> list[str]:
        self._check()
        return list(self.models_)

    def predict_proba(self, x: np.ndarray) -> dict[str, pd.DataFrame]:
        self._check()
        x = _as_matrix(x)
        return {g: pd.DataFrame(m.predict_proba(x), columns=[str(c) for c in m.classes_]) for g, m in self.models_.items()}

    def ranked(self, x: np.ndarray, k: int = 3) -> dict[str, list[list[str]]]:
        """Top-k roles per group, most probable first."""
        return {g: ranked_from_proba(p, k) for g, p in self.predict_proba(x).items()}


def _as_matrix(x: Any) -> Any:
    """float64 rows: a dense array, or CSR kept sparse."""
    return sp.csr_matrix(x, dtype=np.float64) if sp.issparse(x) else np.asarray(x, dtype=np.float64)


def ranked_from_proba(proba: pd.DataFrame, k: int = 3) -> list[list[str]]:
    cols = np.asarray(proba.columns)
    order = np.argsort(-proba.to_numpy(), axis=1, kind="stable")[:, :k]
    return [list(cols[row]) for row in order]


def proba_log_loss(truth: Sequence[str], proba: pd.DataFrame) -> float:
    """Log-loss over the group's roles; a held-out role never seen in training counts at 1e-15."""
    proba = proba[sorted(proba.columns)]  # sklearn reads columns in sorted label order
    labels = list(proba.columns)
    p = proba.to_numpy()
    extra = sorted(set(truth) - set(labels))
    if extra:
        p = np.concatenate([p, np.zeros((len(p), len(extra)))], axis=1)
        labels = labels + extra
        order = np.argsort(labels)
        p, labels = p[:, order], [labels[i] for i in order]
    p = np.clip(p, 1e-15, 1)
    p = p / p.sum(axis=1, keepdims=True)
    return float(log_loss(list(truth), p, labels=labels))


def calibration_error(truth: Sequence[str], proba: pd.DataFrame, bins: int = 10) -> float:
    """Expected calibration error of the top-1 confidence (0 = confidences match accuracy)."""
    p = proba.to_numpy()
    conf = p.max(axis=1)
    hit = np.asarray(proba.columns)[p.argmax(axis=1)] == np.asarray(list(truth))
    edges = np.linspace(0, 1, bins + 1)
    err = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            err += m.mean() * abs(hit[m].mean() - conf[m].mean())
    return float(err)


def prior_proba(train_labels: pd.Series, n: int) -> pd.DataFrame:
    """The majority baseline as probabilities (training class frequencies for everyone)."""
    freq = train_labels.astype(str).value_counts(normalize=True)
    return pd.DataFrame(np.tile(freq.to_numpy(), (n, 1)), columns=list(freq.index))


def one_hot_answers(answers: Sequence[Mapping[str, str] | None], groups: Mapping[str, Sequence[str]]) -> tuple[np.ndarray, list[str]]:
    """The LLM's named role per group as one-hot columns (a missing answer is all zeros), so the
    LLM route can be a feature of the classifier."""
    names = [f"llm:{g}={r}" for g, roles in groups.items() for r in roles]
    col = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(answers), len(names)), dtype=np.float32)
    for u, ans in enumerate(answers):
        for g, r in (ans or {}).items():
            j = col.get(f"llm:{g}={r}")
            if j is not None:
                out[u, j] = 1.0
    return out, names
