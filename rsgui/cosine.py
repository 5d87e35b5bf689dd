"""Exact top-k cosine search over float features (the codes of the ``gan-*`` methods).

Ties are broken by archive position, as in Hamming search, so a ranking never depends on how the
queries were batched.
"""

from __future__ import annotations

import numpy as np

# Similarities computed at a time: query rows x archive rows (~64 MiB of float32).
_CHUNK_CELLS = 1 << 24


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """(N, D) float32 rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0).astype(np.float32)


def cosine_topk(
    db: np.ndarray, queries: np.ndarray, k: int, normalised: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The k archive features most cosine-similar to each query, exact, ties by archive position.

    ``db`` (N, D), ``queries`` (Q, D) or (D,); ``normalised``: ``db`` rows are already unit length
    (prepared once per index). Returns ``idx`` (Q, k) int64 and ``similarity`` (Q, k) float32,
    descending; zero vectors have similarity 0 to everything."""
    db = np.asarray(db, dtype=np.float32) if normalised else normalise_rows(db)
    q = normalise_rows(queries)
    if q.shape[1] != db.shape[1]:
        raise ValueError(f"query features have {q.shape[1]} dimensions, the archive {db.shape[1]}")
    n, nq = db.shape[0], q.shape[0]
    if int(k) < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    k = min(int(k), n)
    idx = np.zeros((nq, k), np.int64)
    sim = np.zeros((nq, k), np.float32)
    if k == 0 or nq == 0:
        return idx, sim
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    for a in range(0, nq, chunk):
        s = q[a : a + chunk] @ db.T
        if 4 * k >= n:  # a large share of the archive: one stable sort of everything
            order = np.argsort(-s, axis=1, kind="stable")[:, :k]
            idx[a : a + len(s)] = order
            sim[a : a + len(s)] = np.take_along_axis(s, order, 1)
            continue
        for j, row in enumerate(s):
            kth = np.partition(row, n - k)[n - k]
            cand = np.flatnonzero(row >= kth)
            order = np.argsort(-row[cand], kind="stable")[:k]
            idx[a + j] = cand[order]
            sim[a + j] = row[cand[order]]
    return idx, sim
