"""Trie-constrained beam search over Semantic IDs, independent of any model.

A model supplies `step(query_ids, prefixes) -> log-probs (m, vocab)` for the next level; the
search keeps, per query, the `beam_size` best valid prefixes level by level. Only codes the
`SIDPrefixIndex` allows are ever expanded, so every finished beam is a real item.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recsage.tokenizers.prefix_index import SIDPrefixIndex

StepFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def constrained_beam_search(
    step: StepFn, index: SIDPrefixIndex, n_queries: int, beam_size: int = 20, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (item_ids, scores), each (n_queries, k), best first; -1 / -inf pad short lists.

    Scores are summed log-probabilities of the SID tokens; ties break by item id.
    """
    k = k or beam_size
    q_ids = np.arange(n_queries)
    prefixes = np.zeros((n_queries, 0), dtype=np.int64)
    scores = np.zeros(n_queries)
    for level in range(index.n_levels):
        logp = np.asarray(step(q_ids, prefixes), dtype=np.float64)
        cand_q, cand_p, cand_s = [], [], []
        for row in range(len(q_ids)):
            allowed = index.allowed(tuple(prefixes[row]))
            if len(allowed) == 0:
                continue
            s = scores[row] + logp[row, allowed]
            take = np.argsort(-s, kind="stable")[:beam_size]
            cand_q.append(np.full(len(take), q_ids[row]))
            cand_p.append(np.concatenate([np.repeat(prefixes[row][None, :], len(take), 0), allowed[take][:, None]], axis=1))
            cand_s.append(s[take])
        if not cand_q:
            break
        cq, cp, cs = np.concatenate(cand_q), np.concatenate(cand_p), np.concatenate(cand_s)
        # keep the best `beam_size` candidates per query
        order = np.lexsort((-cs, cq))
        cq, cp, cs = cq[order], cp[order], cs[order]
        first = np.r_[0, np.flatnonzero(np.diff(cq)) + 1]
        rank = np.arange(len(cq)) - np.repeat(first, np.diff(np.r_[first, len(cq)]))
        keep = rank < beam_size
        q_ids, prefixes, scores = cq[keep], cp[keep], cs[keep]
    items = np.full((n_queries, k), -1, dtype=np.int64)
    out_scores = np.full((n_queries, k), -np.inf)
    by_q: dict[int, list[tuple[float, int]]] = {}
    for q, p, s in zip(q_ids, prefixes, scores):
        it = index.item(p)
        if it is not None:
            by_q.setdefault(int(q), []).append((-float(s), it))
    for q, lst in by_q.items():
        lst.sort()
        seen, row = set(), []
        for neg_s, it in lst:
            if it not in seen:
                seen.add(it)
                row.append((it, -neg_s))
        row = row[:k]
        items[q, : len(row)] = [r[0] for r in row]
        out_scores[q, : len(row)] = [r[1] for r in row]
    return items, out_scores
