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
    step: StepFn, index: SIDPrefixIndex, n_queries: int, beam_size: int = 20, k: int | None = None, renormalize: bool = False,
    free_levels: tuple[int, ...] | list[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (item_ids, scores), each (n_queries, k), best first; -1 / -inf pad short lists.

    Scores are summed log-probabilities of the SID tokens; with `renormalize` each level's
    distribution is restricted to the prefix's valid children first (a softmax over the trie), so
    a score is the log-probability of a real item, as a model trained with that softmax defines it.
    All queries advance together: beams
    are a (queries, beams) grid, the trie's dense child tables mask what may follow each prefix,
    and one top-k per query keeps the best extensions (ties: earlier beam, then lower code).
    `step` is only asked about live beams.
    `free_levels` (vocabulary sizes) are unconstrained steps before the SID — a thinking model's
    thought tokens: any code may follow, and the trie starts at its root after them. Two beams
    with different thoughts may end on the same item; callers de-duplicate.
    """
    k = k or beam_size
    q_all = np.arange(n_queries)
    pid = np.zeros((n_queries, 1), dtype=np.int64)  # prefix id per beam (root = 0)
    scores = np.zeros((n_queries, 1))
    prefixes = np.zeros((n_queries, 1, 0), dtype=np.int64)
    free = [np.zeros((1, int(size)), dtype=np.int64) for size in free_levels]  # every code continues at the root
    for level, table in enumerate(free + list(index.children)):
        width = table.shape[1]
        qi, bi = np.nonzero(np.isfinite(scores))
        if len(qi) == 0:
            break
        logp = np.asarray(step(qi, prefixes[qi, bi]), dtype=np.float64)[:, :width]
        child = table[pid]  # (Q, B, width); dead beams point at prefix 0 but score -inf
        if renormalize:
            logp = np.where(child[qi, bi] >= 0, logp, -np.inf)
            top = logp.max(1, keepdims=True)
            logp = logp - (top + np.log(np.exp(logp - top).sum(1, keepdims=True)))
        cand = np.full(scores.shape + (width,), -np.inf)
        cand[qi, bi] = scores[qi, bi, None] + logp
        cand[child < 0] = -np.inf
        flat = cand.reshape(n_queries, -1)
        nb = min(beam_size, flat.shape[1])
        top = np.sort(np.argpartition(-flat, nb - 1, axis=1)[:, :nb], axis=1)  # index order = tie-break
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(flat, top, 1), axis=1, kind="stable"), 1)
        scores = np.take_along_axis(flat, top, 1)
        b, c = top // width, top % width
        new_pid = child[q_all[:, None], b, c].astype(np.int64)
        dead = ~np.isfinite(scores)
        new_pid[dead] = 0
        prefixes = np.concatenate([prefixes[q_all[:, None], b], c[:, :, None]], axis=2)
        pid = new_pid
    items = np.where(np.isfinite(scores), pid, -1)
    out_items = np.full((n_queries, k), -1, dtype=np.int64)
    out_scores = np.full((n_queries, k), -np.inf)
    m = min(k, items.shape[1])
    out_items[:, :m], out_scores[:, :m] = items[:, :m], scores[:, :m]
    return out_items, out_scores
