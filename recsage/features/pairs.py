"""Candidates from several retrievers and the (query, candidate) features a ranker learns from.

Every signal is a named feature in a named group (behaviour, sid, text, tagcf, reward), so the
value of each LLM-derived signal is measured on the same candidates by dropping its group.
A feature reads only the query's history (the input) and item-level signals computed from the
training split, never the target or anything after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsage.core.errors import InvalidInputError, NotFittedError
from recsage.evaluation.metrics import top_k
from recsage.features.signals import ItemSignals
from recsage.recmodels.base import check_histories, exclude_history
from recsage.recmodels.embedding_knn import next_item_map
from recsage.recmodels.itemknn import ItemKNNConfig, ItemKNNRecommender, recency_query

GROUPS = ("behaviour", "sid", "text", "tagcf", "reward")
RECENT = 20  # history items the similarity features look at


def feature_group(name: str) -> str:
    """`ret.sasrec.score` → behaviour; `sid.prefix_last` → sid; … (the prefix before the first dot;
    LightGBM refuses ':' and other JSON characters in feature names)."""
    head = name.split(".", 1)[0]
    if name.startswith(("ret.textknn.", "ret.textnext.")):  # the text-embedding retrievers' scores are a text signal
        return "text"
    return {"ret": "behaviour", "co": "behaviour", "tr": "behaviour", "item": "behaviour", "user": "behaviour", "tag": "tagcf"}.get(head, head)


def group_shares(importance: Mapping[str, float]) -> dict[str, float]:
    """Per-feature importances summed per feature group, as shares of the total, largest first."""
    out: dict[str, float] = {}
    for n, g in importance.items():
        out[feature_group(n)] = out.get(feature_group(n), 0.0) + g
    total = sum(out.values()) or 1.0
    return {g: v / total for g, v in sorted(out.items(), key=lambda kv: -kv[1])}


@dataclass
class Candidates:
    """(n_queries, width) candidate ids padded with -1, and each retriever's rank/score of them."""

    ids: np.ndarray
    ranks: dict[str, np.ndarray]  # 0-based rank in that retriever's top-N, n_candidates when absent
    scores: dict[str, np.ndarray]  # that retriever's score (NaN where it gives none)
    n_candidates: int = 100

    def recall(self, targets: np.ndarray) -> float:
        return float(np.mean((self.ids == np.asarray(targets)[:, None]).any(axis=1))) if len(targets) else 0.0


def _scores_or_none(model, histories: list[np.ndarray]) -> np.ndarray | None:
    """Full score rows for models that score every item (SASRec, item-kNN); None for beam models."""
    return model.score(histories).astype(np.float32) if hasattr(model, "score") else None


def generate_candidates(retrievers: Mapping[str, object], histories: Sequence[np.ndarray], n_candidates: int = 100,
                        exclude_seen: bool = True, batch_size: int = 2048) -> Candidates:
    """Union of each retriever's top-`n_candidates` (seen items excluded as in `loo`), ordered by
    the first retriever's rank then the next's. Queries go in batches, so only a batch's full
    score rows are in memory (all of Beauty's at once peaked at 11.6 GB)."""
    hist = list(histories)
    if len(hist) > batch_size:
        parts = [_candidates(retrievers, hist[lo : lo + batch_size], n_candidates, exclude_seen) for lo in range(0, len(hist), batch_size)]
        width = max(p.ids.shape[1] for p in parts)

        def pad(a: np.ndarray, fill) -> np.ndarray:
            return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)

        return Candidates(np.concatenate([pad(p.ids, -1) for p in parts]),
                          {r: np.concatenate([pad(p.ranks[r], n_candidates) for p in parts]) for r in parts[0].ranks},
                          {r: np.concatenate([pad(p.scores[r], np.nan) for p in parts]) for r in parts[0].scores}, n_candidates)
    return _candidates(retrievers, hist, n_candidates, exclude_seen)


def _candidates(retrievers: Mapping[str, object], hist: list[np.ndarray], n_candidates: int, exclude_seen: bool) -> Candidates:
    per: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
    for name, model in retrievers.items():
        full = _scores_or_none(model, hist)
        if full is not None:
            s = full.astype(np.float64)
            ids, vals = top_k(exclude_history(s, hist) if exclude_seen else s, n_candidates)
        else:
            ids, vals = model.recommend(hist, k=n_candidates, exclude_seen=exclude_seen)
        per[name] = (np.asarray(ids), np.asarray(vals, dtype=np.float32), full)
    n = len(hist)
    m = max(int(max((ids.max() for ids, _, _ in per.values()), default=0)) + 1, 1)
    # union in retriever order, first occurrence kept: one vectorised pass over row-offset keys
    stacked = np.concatenate([ids for ids, _, _ in per.values()], axis=1) if per else np.zeros((n, 0), dtype=np.int64)
    rows = np.repeat(np.arange(n), stacked.shape[1])
    flat = stacked.reshape(-1)
    keep = flat >= 0
    keys = rows[keep] * m + flat[keep]
    _, first = np.unique(keys, return_index=True)
    first = np.sort(first)
    u_rows, u_ids = rows[keep][first], flat[keep][first]
    counts = np.bincount(u_rows, minlength=n)
    width = max(int(counts.max()) if n else 0, 1)
    slot = np.arange(len(u_rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    out = np.full((n, width), -1, dtype=np.int64)
    out[u_rows, slot] = u_ids
    valid = out >= 0
    safe = np.where(valid, out, 0)
    ranks, scores = {}, {}
    qkeys = (np.arange(n)[:, None] * m + safe).reshape(-1)
    for name, (ids, vals, full) in per.items():
        k = ids.shape[1]
        rk = (np.arange(n)[:, None] * m + np.where(ids >= 0, ids, m - 1)).reshape(-1)
        ok = (ids >= 0).reshape(-1)
        order = np.argsort(rk[ok], kind="stable")
        sorted_keys = rk[ok][order]
        pos_in_list = np.tile(np.arange(k), n)[ok][order]
        j = np.clip(np.searchsorted(sorted_keys, qkeys), 0, max(len(sorted_keys) - 1, 0))
        hit = (sorted_keys[j] == qkeys) if len(sorted_keys) else np.zeros(len(qkeys), bool)
        r = np.where(hit, pos_in_list[j] if len(sorted_keys) else 0, n_candidates).reshape(n, width).astype(np.float32)
        if full is not None:
            sc = np.take_along_axis(full, safe, axis=1)
        else:
            sc = np.where(hit, vals.reshape(-1)[ok][order][j] if len(sorted_keys) else np.nan, np.nan).reshape(n, width)
        ranks[name], scores[name] = np.where(valid, r, n_candidates), np.where(valid, sc, np.nan).astype(np.float32)
    return Candidates(out, ranks, scores, n_candidates)


class PairFeaturizer:
    """Fit on the training sequences (co-occurrence and transitions, popularity); `transform`
    turns (histories, candidates) into a (rows, features) matrix with named, grouped columns."""

    def __init__(self, signals: ItemSignals, groups: Sequence[str] = GROUPS) -> None:
        unknown = set(groups) - set(GROUPS)
        if unknown:
            raise InvalidInputError(f"unknown feature group(s) {sorted(unknown)}; known: {', '.join(GROUPS)}", field="groups")
        self.signals = signals
        self.groups = tuple(groups)

    def fit(self, train) -> PairFeaturizer:
        """`train` is a SequenceSet (training split): the only interactions features may read."""
        self.knn_ = ItemKNNRecommender(ItemKNNConfig()).fit(train)
        self.n_items_ = train.n_items
        return self

    def fit_from(self, knn: ItemKNNRecommender) -> PairFeaturizer:
        self.knn_, self.n_items_ = knn, knn.n_items_
        return self

    def feature_names(self, retriever_names: Sequence[str]) -> list[str]:
        s = self.signals
        names = [f"ret.{r}.{k}" for r in retriever_names for k in ("score", "rank")] + ["ret.n_proposing"]
        names += ["co.last", "co.prev", "co.hist", "tr.last", "tr.prev", "tr.hist", "tr.to_last",
                  "co.prev2", "tr.prev2", "co.max5", "co.argmax5", "tr.hop2",
                  "item.pop", "item.pop_recent", "user.hist_len", "user.n_unique"]
        if "sid" in self.groups and s.sid_codes is not None:
            names += ["sid.prefix_last", "sid.prefix_max", "sid.l1_share", "sid.l2_share"]
        if "text" in self.groups and s.text_embedding is not None:
            names += ["text.cos_last", "text.cos_mean", "text.cos_max", "text.next_last", "text.next_hist"]
        if "tagcf" in self.groups and s.topics is not None:
            names += ["tag.topic_cos", "tag.n_topics"] + (["tag.logic"] if s.topic_to_role is not None else []) + ["tag.cos_last", "tag.tr_last", "tag.tr_hist"]
        if "reward" in self.groups and s.reward is not None:
            names += ["reward.title"]
        return names

    def transform(self, histories: Sequence[np.ndarray], cands: Candidates, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(features for every valid candidate, row → query index, feature names)."""
        if not hasattr(self, "knn_"):
            raise NotFittedError("PairFeaturizer is not fitted; call fit() first")
        hist = check_histories(histories, self.n_items_)
        names = self.feature_names(list(cands.ranks))
        blocks, qidx = [], []
        for lo in range(0, len(hist), batch_size):
            hi = min(lo + batch_size, len(hist))
            f = self._batch(hist[lo:hi], cands, lo, hi)
            valid = cands.ids[lo:hi] >= 0
            blocks.append(f[valid])
            qidx.append(np.nonzero(valid)[0] + lo)
        x = np.concatenate(blocks) if blocks else np.zeros((0, len(names)), dtype=np.float32)
        return x, (np.concatenate(qidx) if qidx else np.zeros(0, dtype=np.int64)), names

    def _batch(self, hist: list[np.ndarray], cands: Candidates, lo: int, hi: int) -> np.ndarray:
        s, knn = self.signals, self.knn_
        ids = cands.ids[lo:hi]
        b, w = ids.shape
        safe = np.where(ids >= 0, ids, 0)
        n = self.n_items_
        cols: list[np.ndarray] = []
        for name in cands.ranks:
            cols += [cands.scores[name][lo:hi], cands.ranks[name][lo:hi]]
        cols.append(sum((cands.ranks[r][lo:hi] < cands.n_candidates).astype(np.float32) for r in cands.ranks))
        last = np.array([h[-1] if len(h) else -1 for h in hist])
        prev = np.array([h[-2] if len(h) > 1 else -1 for h in hist])

        def rows_of(items: np.ndarray, m: sp.csr_matrix) -> np.ndarray:
            """Dense rows m[item] (zeros where item is -1), gathered at the candidates."""
            q = sp.csr_matrix((np.ones(int((items >= 0).sum())), (np.nonzero(items >= 0)[0], items[items >= 0])), shape=(b, n))
            return np.take_along_axis(np.asarray((q @ m).todense(), dtype=np.float32), safe, axis=1)

        weights = recency_query(hist, n, 0.6, RECENT)

        def weighted(m: sp.csr_matrix) -> np.ndarray:
            return np.take_along_axis(np.asarray((weights @ m).todense(), dtype=np.float32), safe, axis=1)

        cols += [rows_of(last, knn.cosine_), rows_of(prev, knn.cosine_), weighted(knn.cosine_),
                 rows_of(last, knn.transition_), rows_of(prev, knn.transition_), weighted(knn.transition_)]
        # how often the candidate is followed by the user's last item elsewhere (c → last)
        cols.append(rows_of(last, self._reverse_transitions()))
        prev2 = np.array([h[-3] if len(h) > 2 else -1 for h in hist])
        cols += [rows_of(prev2, knn.cosine_), rows_of(prev2, knn.transition_)]
        # strongest co-occurrence among the last 5 items, and how far back that item is (5 = none)
        recent5 = np.stack([rows_of(np.array([h[-1 - j] if len(h) > j else -1 for h in hist]), knn.cosine_) for j in range(5)], axis=2)
        best = recent5.max(axis=2)
        cols += [best, np.where(best > 0, recent5.argmax(axis=2), 5).astype(np.float32)]
        # two steps of transitions from the last item: last → x → candidate
        has = last >= 0
        q = sp.csr_matrix((np.ones(int(has.sum())), (np.nonzero(has)[0], last[has])), shape=(b, n))
        cols.append(np.take_along_axis(np.asarray(((q @ knn.transition_) @ knn.transition_).todense(), dtype=np.float32), safe, axis=1))
        cols += [np.log1p(s.popularity[safe]).astype(np.float32), np.log1p(s.recent_popularity[safe]).astype(np.float32)]
        lens = np.array([len(h) for h in hist], dtype=np.float32)
        uniq = np.array([len(np.unique(h)) for h in hist], dtype=np.float32)
        cols += [np.repeat(lens[:, None], w, 1), np.repeat(uniq[:, None], w, 1)]
        recent = [h[-RECENT:] for h in hist]
        if "sid" in self.groups and s.sid_codes is not None:
            cols += self._sid(recent, safe)
        if "text" in self.groups and s.text_embedding is not None:
            cols += self._text(recent, safe)
            cols += self._text_next(last, weights, safe)
        if "tagcf" in self.groups and s.topics is not None:
            cols += self._tags(recent, safe)
            cols += self._topic_transitions(last, weights, safe)
        if "reward" in self.groups and s.reward is not None:
            cols.append(s.reward[safe].astype(np.float32))
        return np.stack(cols, axis=2).astype(np.float32)

    def _derived(self, key: str, build):
        """A value computed once from the fitted item-kNN (its transitions) and reused by every
        batch; rebuilt when `fit`/`fit_from` installs another item-kNN."""
        cache = self.__dict__.setdefault("_derived_cache", {})
        if key not in cache or cache[key][0] is not self.knn_:
            cache[key] = (self.knn_, build())
        return cache[key][1]

    def _reverse_transitions(self) -> sp.csr_matrix:
        return self._derived("reverse_transitions", lambda: self.knn_.transition_.T.tocsr())

    def _topic_flow(self) -> np.ndarray:
        """(n_topics, n_topics) P(next item's topic | this item's topic), from the training split's
        item transitions: the topic-level view of "what follows what", which reaches items whose
        own transitions are too sparse to count (most of a long-tail catalogue)."""

        def build() -> np.ndarray:
            t = sp.csr_matrix(self.signals.topics.astype(np.float64))
            flow = np.asarray((t.T @ self.knn_.transition_ @ t).todense())
            return (flow / np.maximum(flow.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)

        return self._derived("topic_flow", build)

    def _topic_transitions(self, last: np.ndarray, weights: sp.csr_matrix, safe: np.ndarray) -> list[np.ndarray]:
        """Topic cosine with the last item, and how strongly the topics of the last item (and of the
        recency-weighted history) lead to the candidate's topics in the training transitions."""
        t = self.signals.topics.astype(np.float32)
        flow = self._topic_flow()
        tn = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
        size = np.maximum(t.sum(axis=1), 1.0)
        prof = np.asarray(weights @ t, dtype=np.float32)
        prof = (prof / np.maximum(prof.sum(axis=1, keepdims=True), 1e-12)) @ flow  # the history's next-topic distribution
        b, w = safe.shape
        out = [np.zeros((b, w), np.float32) for _ in range(3)]
        for i in range(b):
            c = t[safe[i]]
            out[2][i] = c @ prof[i] / size[safe[i]]
            if last[i] >= 0:
                out[0][i] = tn[safe[i]] @ tn[last[i]]
                out[1][i] = c @ (t[last[i]] @ flow) / size[safe[i]]
        return out

    def _text_map(self) -> np.ndarray:
        """(d, d) ridge map from an item's text embedding to the embedding of what follows it, fit on
        the training split's transitions: a "what comes next" in text space that scores items no
        user has yet moved to (the long tail the co-occurrence features cannot see)."""

        def build() -> np.ndarray:
            return next_item_map(self.signals.text_embedding, self.knn_.transition_)

        return self._derived("text_map", build)

    def _text_next(self, last: np.ndarray, weights: sp.csr_matrix, safe: np.ndarray) -> list[np.ndarray]:
        """Cosine between the candidate and the predicted next-item embedding, from the last item
        and from the recency-weighted history."""
        e = self.signals.text_embedding.astype(np.float32)
        m = self._text_map()
        hist = np.asarray(weights @ e, dtype=np.float32) @ m
        lst = np.where((last >= 0)[:, None], e[np.maximum(last, 0)], 0.0) @ m

        def unit(v: np.ndarray) -> np.ndarray:
            return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

        hist, lst = unit(hist), unit(lst)
        out = [np.zeros(safe.shape, np.float32) for _ in range(2)]
        for i in range(len(safe)):  # one query at a time: (width, d) instead of (batch, width, d)
            c = e[safe[i]]
            out[0][i], out[1][i] = c @ lst[i], c @ hist[i]
        return out

    def _sid(self, recent: list[np.ndarray], safe: np.ndarray) -> list[np.ndarray]:
        codes = self.signals.sid_codes
        b, w = safe.shape
        cand = codes[safe]  # (b, w, L)
        prefix_last = np.zeros((b, w), np.float32)
        prefix_max = np.zeros((b, w), np.float32)
        l1 = np.zeros((b, w), np.float32)
        l2 = np.zeros((b, w), np.float32)
        for i, h in enumerate(recent):
            if not len(h):
                continue
            hc = codes[h]  # (len, L)
            eq = cand[i][:, None, :] == hc[None, :, :]  # (w, len, L)
            plen = np.cumprod(eq, axis=2).sum(axis=2)  # common prefix length per history item
            prefix_last[i] = plen[:, -1]
            prefix_max[i] = plen.max(axis=1)
            l1[i] = (plen >= 1).mean(axis=1)
            l2[i] = (plen >= 2).mean(axis=1)
        return [prefix_last, prefix_max, l1, l2]

    def _text(self, recent: list[np.ndarray], safe: np.ndarray) -> list[np.ndarray]:
        e = self.signals.text_embedding
        b, w = safe.shape
        out = [np.zeros((b, w), np.float32) for _ in range(3)]
        for i, h in enumerate(recent):
            if not len(h):
                continue
            sims = e[safe[i]] @ e[h].T  # (w, len)
            out[0][i] = sims[:, -1]
            mean = e[h].mean(axis=0)
            out[1][i] = e[safe[i]] @ (mean / max(np.linalg.norm(mean), 1e-12))
            out[2][i] = sims.max(axis=1)
        return out

    def _tags(self, recent: list[np.ndarray], safe: np.ndarray) -> list[np.ndarray]:
        s = self.signals
        t = s.topics
        b, w = safe.shape
        cos = np.zeros((b, w), np.float32)
        logic = np.zeros((b, w), np.float32)
        tn = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
        for i, h in enumerate(recent):
            if not len(h):
                continue
            prof = t[h].sum(axis=0)
            if prof.sum() <= 0:
                continue
            prof = prof / prof.sum()
            cos[i] = tn[safe[i]] @ (prof / max(np.linalg.norm(prof), 1e-12))
            if s.topic_to_role is not None:
                # the user's roles implied by their topics, and the topics those roles lead to
                roles = prof @ s.topic_to_role
                implied = roles @ s.role_to_topic
                logic[i] = t[safe[i]] @ implied
        out = [cos, t[safe].sum(axis=2).astype(np.float32)]
        return out + ([logic] if s.topic_to_role is not None else [])
