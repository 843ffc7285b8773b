"""Retrieve → rank (GRank's generate-rank pattern) behind the one `Recommender` interface.

Protocol (`loo` two-stage, shared/PROTOCOLS.md): retrievers are fitted on the training
sequences; the ranker learns on *validation* queries (history s[:-2], target s[-2]), its rounds
chosen by user-level CV on them (or, above 20,000 usable queries, early-stopped on a held-out slice
of their users); it is then scored on test queries with nothing refitted. `recommend` ranks only the candidate union; items outside it are never returned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsage.core.config import ConfigMixin, read_saved_meta
from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.datasets.splits import QuerySet, SequenceSet
from recsage.features.pairs import GROUPS, Candidates, PairFeaturizer, feature_group, generate_candidates, group_shares
from recsage.features.signals import ItemSignals
from recsage.recmodels.base import check_histories
from recsage.recmodels.itemknn import ItemKNNRecommender
from recsage.recmodels.ranker import LambdaRanker, LambdaRankerConfig
from recsage.recmodels.saved import load_recommender

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TwoStageConfig(ConfigMixin):
    n_candidates: int = 100  # per retriever; the union is ranked
    groups: tuple[str, ...] = GROUPS  # feature groups the ranker may use (absent signals are skipped)
    early_stop_share: float = 0.1  # share of validation users held out for the ranker's early stopping
    select_groups: bool = False  # drop groups that lower k-fold NDCG on the validation queries (features/group_selection.py)
    selection_folds: int = 3
    seed: int = 0


@dataclass
class RankingData:
    """Features of one query set on its candidates: what the ranker trains on or scores."""

    candidates: Candidates
    x: np.ndarray
    query: np.ndarray  # row → query index
    names: list[str]

    def labels(self, targets: np.ndarray) -> np.ndarray:
        ids = self.candidates.ids[self.candidates.ids >= 0]
        return (ids == np.asarray(targets)[self.query]).astype(np.float32)

    def columns(self, names: Sequence[str]) -> np.ndarray:
        idx = [self.names.index(n) for n in names]
        return self.x[:, idx]


def build_ranking_data(retrievers: Mapping[str, Any], featurizer: PairFeaturizer, histories: Sequence[np.ndarray], n_candidates: int,
                       exclude_seen: bool = True) -> RankingData:
    cands = generate_candidates(retrievers, histories, n_candidates, exclude_seen=exclude_seen)
    x, q, names = featurizer.transform(histories, cands)
    return RankingData(cands, x, q, names)


def ranked_lists(data: RankingData, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k candidate ids per query from per-row scores (ties: item id ascending)."""
    n = data.candidates.ids.shape[0]
    ids = data.candidates.ids[data.candidates.ids >= 0]
    order = np.lexsort((ids, -scores, data.query))
    q, ids_s, sc_s = data.query[order], ids[order], scores[order]
    starts = np.searchsorted(q, np.arange(n))
    rank = np.arange(len(q)) - starts[q]
    keep = rank < k
    out = np.full((n, k), -1, dtype=np.int64)
    vals = np.full((n, k), -np.inf)
    out[q[keep], rank[keep]] = ids_s[keep]
    vals[q[keep], rank[keep]] = sc_s[keep]
    return out, vals


def group_slices(queries: np.ndarray) -> np.ndarray:
    """LightGBM group sizes for rows sorted by query."""
    _, counts = np.unique(queries, return_counts=True)
    return counts


def fit_ranker(data: RankingData, targets: np.ndarray, feature_names: Sequence[str], config: LambdaRankerConfig, *,
               user_ids: np.ndarray, early_stop_share: float = 0.1, seed: int = 0, queries: np.ndarray | None = None) -> LambdaRanker:
    """LambdaRank on the queries whose candidates contain the target (the others carry no
    gradient), early-stopped on a user-level held-out slice. `queries`: a boolean mask of the
    queries it may use (cross-validation folds); all by default."""
    y = data.labels(targets)
    has_pos = np.zeros(len(targets), bool)
    has_pos[data.query[y > 0]] = True
    if queries is not None:
        has_pos &= np.asarray(queries, bool)
    if LambdaRanker(config).is_compact(int(has_pos.sum())):
        early_stop_share = 0.0  # small data: every query trains a compact fixed-round model (see LambdaRankerConfig)
    rng = np.random.default_rng(seed)
    uniq = np.unique(user_ids)
    held = set(rng.choice(uniq, size=max(1, int(round(early_stop_share * len(uniq)))), replace=False).tolist()) if early_stop_share > 0 else set()
    is_held = np.array([u in held for u in user_ids])
    x = data.columns(feature_names)
    sets = []
    for mask in (has_pos & ~is_held, has_pos & is_held):
        rows = mask[data.query]
        sets.append((x[rows], y[rows], group_slices(data.query[rows])))
    valid = sets[1] if len(sets[1][0]) else None
    trained = np.unique(data.query[(has_pos & ~is_held)[data.query]])  # the training groups' queries, in order
    folds = user_folds(np.asarray(user_ids)[trained], config.compact_cv_folds, seed)
    return LambdaRanker(config).fit(*sets[0], feature_names=list(feature_names), valid=valid, query_folds=folds)


def user_folds(user_ids: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """A fold number per query, the same for every query of one user (no user on both sides)."""
    users = np.unique(user_ids)
    fold_of_user = dict(zip(users.tolist(), (np.random.default_rng(seed).permutation(len(users)) % folds).tolist()))
    return np.array([fold_of_user[int(u)] for u in user_ids], dtype=np.int64)


def with_cv_rounds(data: RankingData, targets: np.ndarray, feature_names: Sequence[str], config: LambdaRankerConfig, *,
                   user_ids: np.ndarray, seed: int = 0) -> LambdaRankerConfig:
    """`config` with the compact model's rounds fixed to the CV choice on these features, so that
    several rankers (ablation steps, group-selection folds) share one budget instead of each
    choosing its own; unchanged when the model is not compact or its rounds are already fixed."""
    from dataclasses import replace

    y = data.labels(targets)
    pos = np.unique(data.query[y > 0])
    ranker = LambdaRanker(config)
    if config.compact_rounds > 0 or not ranker.is_compact(len(pos)):
        return config
    rows = np.isin(data.query, pos)
    rounds, _ = ranker.cv_rounds(data.columns(feature_names)[rows], y[rows], group_slices(data.query[rows]),
                                 user_folds(np.asarray(user_ids)[pos], config.compact_cv_folds, seed))
    return replace(config, compact_rounds=rounds)


class TwoStageRecommender:
    """Retrievers → pair features → LambdaRank. `fit` needs the retrievers already fitted on
    `train` (they are given, not trained here: each has its own recipe and budget)."""

    def __init__(self, retrievers: Mapping[str, Any], signals: ItemSignals, config: TwoStageConfig | None = None,
                 ranker_config: LambdaRankerConfig | None = None) -> None:
        if not retrievers:
            raise InvalidInputError("the ranking stage needs at least one retriever", field="retrievers")
        self.retrievers = dict(retrievers)
        self.signals = signals
        self.config = config or TwoStageConfig()
        self.ranker_config = ranker_config or LambdaRankerConfig(seed=self.config.seed)

    def fit(self, train: SequenceSet, valid: QuerySet, *, exclude_seen: bool = True, featurizer: PairFeaturizer | None = None) -> TwoStageRecommender:
        """`featurizer`: one already fitted on `train` (e.g. sharing a fitted item-kNN)."""
        if valid is None or len(valid) == 0:
            raise InvalidInputError("the ranker learns on validation queries; the split has none", field="valid")
        self.featurizer_ = featurizer or PairFeaturizer(self.signals, self.config.groups).fit(train)
        data = build_ranking_data(self.retrievers, self.featurizer_, valid.histories, self.config.n_candidates, exclude_seen)
        names = data.names
        if self.config.select_groups:
            from recsage.features.group_selection import select_groups

            kept, self.group_selection_ = select_groups(data, valid.targets, self.ranker_config, user_ids=valid.user_ids,
                                                        folds=self.config.selection_folds, seed=self.config.seed)
            names = [n for n in data.names if feature_group(n) in kept]
        self.ranker_ = fit_ranker(data, valid.targets, names, self.ranker_config, user_ids=valid.user_ids,
                                  early_stop_share=self.config.early_stop_share, seed=self.config.seed)
        self.valid_candidate_recall_ = data.candidates.recall(valid.targets)
        self.n_items_ = train.n_items
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "ranker_"):
            raise NotFittedError("TwoStageRecommender is not fitted; call fit() first")

    def ranking_data(self, histories: Sequence[np.ndarray], exclude_seen: bool = True) -> RankingData:
        self._check_fitted()
        return build_ranking_data(self.retrievers, self.featurizer_, check_histories(histories, self.n_items_), self.config.n_candidates,
                                  exclude_seen)

    def score_data(self, data: RankingData) -> np.ndarray:
        return self.ranker_.predict(data.columns(self.ranker_.feature_names_))

    def recommend(self, histories: Sequence[np.ndarray], k: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        data = self.ranking_data(histories, exclude_seen)
        return ranked_lists(data, self.score_data(data), k)

    def explain(self, history: np.ndarray, k: int = 10) -> list[dict[str, Any]]:
        """Top-k for one history with each feature's contribution (LightGBM `pred_contrib`),
        summed per group too: "why this item"."""
        data = self.ranking_data([history])
        x = data.columns(self.ranker_.feature_names_)
        scores = self.ranker_.predict(x)
        contrib = self.ranker_.contributions(x)
        ids = data.candidates.ids[data.candidates.ids >= 0]
        order = np.lexsort((ids, -scores))[:k]
        out = []
        for r, row in enumerate(order):
            feats = {n: float(contrib[row, j]) for j, n in enumerate(self.ranker_.feature_names_)}
            groups: dict[str, float] = {}
            for n, v in feats.items():
                groups[feature_group(n)] = groups.get(feature_group(n), 0.0) + v
            out.append({"rank": r + 1, "item_id": int(ids[row]), "score": float(scores[row]), "bias": float(contrib[row, -1]),
                        "contributions": feats, "groups": groups,
                        "values": {n: float(x[row, j]) for j, n in enumerate(self.ranker_.feature_names_)}})
        return out

    def group_importance(self) -> dict[str, float]:
        """Total LightGBM gain per feature group, as shares."""
        return group_shares(self.ranker_.feature_importance())

    # ---- persistence: a folder; retrievers and the featurizer's kNN saved as their own folders ----
    def save_pretrained(self, directory: str | Path) -> Path:
        from safetensors.numpy import save_file

        self._check_fitted()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for name, model in self.retrievers.items():
            if not hasattr(model, "save_pretrained"):
                raise InvalidInputError(f"retriever {name!r} ({type(model).__name__}) cannot be saved", field="retrievers")
            model.save_pretrained(d / "retrievers" / name)
        self.featurizer_.knn_.save_pretrained(d / "featurizer_knn")
        self.ranker_.save_pretrained(d / "ranker")
        save_file({k: np.ascontiguousarray(v) for k, v in self.signals.arrays().items()}, str(d / "signals.safetensors"))
        (d / "config.json").write_text(json.dumps({
            "class": "two-stage", "format_version": FORMAT_VERSION, "n_items": self.n_items_, "retrievers": list(self.retrievers),
            "params": {**self.config.to_dict(), "groups": list(self.config.groups)}, "signal_names": self.signals.names,
            "valid_candidate_recall": self.valid_candidate_recall_}, indent=2))
        return d

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> TwoStageRecommender:
        from safetensors.numpy import load_file

        d = Path(directory)
        meta = read_saved_meta(d, "two-stage", FORMAT_VERSION)
        retrievers = {name: load_recommender(d / "retrievers" / name) for name in meta["retrievers"]}
        try:
            arrays = load_file(str(d / "signals.safetensors"))
        except Exception as e:  # safetensors raises its own error types for a corrupt header
            raise InvalidInputError(f"unreadable signals ({e})", file=str(d / "signals.safetensors")) from None
        signals = ItemSignals.from_arrays(int(meta["n_items"]), arrays, meta.get("signal_names"))
        params = meta["params"]
        config = TwoStageConfig(**{**params, "groups": tuple(params["groups"])})
        obj = cls(retrievers, signals, config)
        obj.featurizer_ = PairFeaturizer(signals, config.groups).fit_from(ItemKNNRecommender.from_pretrained(d / "featurizer_knn"))
        obj.ranker_ = LambdaRanker.from_pretrained(d / "ranker")
        obj.n_items_ = int(meta["n_items"])
        obj.valid_candidate_recall_ = meta.get("valid_candidate_recall")
        return obj
