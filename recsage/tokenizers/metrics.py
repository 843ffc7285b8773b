"""Codebook quality, measured the same way for every method (ours and published indexes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from recsage.tokenizers.collisions import collision_rate


def level_stats(codes: np.ndarray, n_codes: int | None = None) -> list[dict[str, float]]:
    out = []
    for lv in range(codes.shape[1]):
        k = n_codes or int(codes[:, lv].max()) + 1
        counts = np.bincount(codes[:, lv], minlength=k).astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        entropy = float(-(p * np.log2(p)).sum())
        out.append({
            "level": lv,
            "used_codes": int((counts > 0).sum()),
            "utilisation": float((counts > 0).sum() / k),
            "entropy_bits": entropy,
            "entropy_norm": entropy / np.log2(k) if k > 1 else 0.0,
            "max_bucket": int(counts.max()),
        })
    return out


def semantic_consistency(codes: np.ndarray, vectors: np.ndarray) -> float:
    """Share of items whose first code equals that of their nearest neighbour (cosine) in `vectors`."""
    import faiss

    v = np.ascontiguousarray(vectors, dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(v.shape[1])
    index.add(v)
    _, nn = index.search(v, 2)
    # the nearest other item (row 0 may be a duplicate vector rather than the item itself)
    other = np.where(nn[:, 0] == np.arange(len(v)), nn[:, 1], nn[:, 0])
    return float((codes[:, 0] == codes[other, 0]).mean())


def codebook_report(codes: np.ndarray, *, n_codes: int | None = None, vectors: np.ndarray | None = None,
                    reconstruction: np.ndarray | None = None, text_vectors: np.ndarray | None = None) -> dict[str, Any]:
    """`codes` before dedup; reconstruction error is relative: ||x − x̂||² / ||x||² averaged."""
    rep: dict[str, Any] = {
        "n_items": int(len(codes)),
        "n_levels": int(codes.shape[1]),
        "collision_rate": collision_rate(codes),
        "distinct_sids": int(len(np.unique(codes, axis=0))),
        "levels": level_stats(codes, n_codes),
    }
    if vectors is not None and reconstruction is not None:
        num = ((vectors - reconstruction) ** 2).sum(1)
        den = np.maximum((vectors**2).sum(1), 1e-12)
        rep["reconstruction_error"] = float((num / den).mean())
    if text_vectors is not None:
        rep["semantic_consistency"] = semantic_consistency(codes, text_vectors)
    return rep
