"""Retrieval quality measures used in the hashing literature (numpy only).

Inputs are relevance matrices: ``relevance[q, i]`` is True when the i-th result returned for query q
(rank i + 1) is relevant, usually because it has the query's label (:func:`relevance_from_labels`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np


def relevance_from_labels(query_labels, ranked_ids, db_labels) -> np.ndarray:
    """(Q, k) bool: ``db_labels[ranked_ids[q, i]] == query_labels[q]``.

    Labels may be strings or integers; ``None`` never matches anything, so unlabelled queries or
    archive tiles are never relevant."""
    ranked_ids = np.asarray(ranked_ids, dtype=np.int64)
    if ranked_ids.ndim == 1:
        ranked_ids = ranked_ids[None, :]
    q = _labels(query_labels)
    db = _labels(db_labels)
    if q.shape[0] != ranked_ids.shape[0]:
        raise ValueError(f"{q.shape[0]} query labels for {ranked_ids.shape[0]} rankings")
    rel = db[ranked_ids] == q[:, None]
    if q.dtype == object or db.dtype == object:
        rel &= _known(q)[:, None] & _known(db)[ranked_ids]
    return np.asarray(rel, dtype=bool)


def n_relevant_from_labels(query_labels, db_labels) -> np.ndarray:
    """(Q,) int64 number of archive items sharing each query's label (subtract 1 for leave-one-out
    queries taken from the archive itself). ``None`` labels count 0."""
    counts = Counter(v for v in _labels(db_labels).tolist() if v is not None)
    return np.array(
        [counts.get(v, 0) if v is not None else 0 for v in _labels(query_labels).tolist()],
        dtype=np.int64,
    )


def _labels(labels) -> np.ndarray:
    arr = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    return arr


def _known(arr: np.ndarray) -> np.ndarray:
    if arr.dtype != object:
        return np.ones(arr.shape, dtype=bool)
    return np.array([v is not None for v in arr.tolist()], dtype=bool)


def _as_relevance(relevance, k: int | None = None) -> np.ndarray:
    rel = np.asarray(relevance, dtype=bool)
    if rel.ndim == 1:
        rel = rel[None, :]
    if rel.ndim != 2:
        raise ValueError(f"relevance must be (queries, ranks), got shape {rel.shape}")
    if k is not None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        rel = rel[:, :k]
    return rel


def average_precision(
    relevance,
    k: int | None = None,
    n_relevant=None,
    normalise: Literal["retrieved", "min"] = "retrieved",
) -> np.ndarray:
    """(Q,) average precision over the top k results of each query.

    ``AP@k = (1 / Z) * sum_{i <= k} P@i * rel_i`` with ``P@i = (sum_{j <= i} rel_j) / i``.
    ``normalise='retrieved'`` (the deep-hashing convention): ``Z = R_k``, the number of relevant
    results within the top k. ``normalise='min'``: ``Z = min(k, n_relevant[q])``, with ``n_relevant``
    the number of relevant items in the whole archive for that query. AP = 0 when Z = 0.
    ``k=None`` (or k beyond the ranking) uses every column given."""
    rel = _as_relevance(relevance, k)
    kk = rel.shape[1]
    hits = np.cumsum(rel, axis=1, dtype=np.float64)
    ranks = np.arange(1, kk + 1, dtype=np.float64)
    num = np.sum(hits / ranks * rel, axis=1)
    if normalise == "retrieved":
        z = hits[:, -1] if kk else np.zeros(rel.shape[0])
    elif normalise == "min":
        if n_relevant is None:
            raise ValueError("normalise='min' needs n_relevant (relevant items per query)")
        n_rel = np.broadcast_to(np.asarray(n_relevant, dtype=np.float64), (rel.shape[0],))
        z = np.minimum(float(k if k is not None else kk), n_rel)
    else:
        raise ValueError(f"normalise must be 'retrieved' or 'min', got {normalise!r}")
    return np.divide(num, z, out=np.zeros_like(num), where=z > 0)


def map_at_k(
    relevance,
    k: int | None = None,
    n_relevant=None,
    normalise: Literal["retrieved", "min"] = "retrieved",
) -> float:
    """Mean over queries of :func:`average_precision` (MAP@k; see there for the formula)."""
    ap = average_precision(relevance, k, n_relevant, normalise)
    if ap.size == 0:
        raise ValueError("no queries")
    return float(ap.mean())


def precision_at_n(relevance, n: int) -> float:
    """Mean over queries of ``P@N = (number of relevant results among the first N) / N``.

    If a ranking holds fewer than N results, N is reduced to its length."""
    rel = _as_relevance(relevance, n)
    if rel.shape[0] == 0 or rel.shape[1] == 0:
        raise ValueError("no queries or no results")
    return float(rel.sum(axis=1).mean() / rel.shape[1])


def pr_cut_points(n_results: int, step: int = 500) -> np.ndarray:
    """Cut-offs of :func:`pr_curve`: ``step, 2*step, ...`` and always the last result ``n_results``."""
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    cuts = np.arange(step, n_results + 1, step, dtype=np.int64)
    if cuts.size == 0 or cuts[-1] != n_results:
        cuts = np.append(cuts, n_results)
    return cuts


def pr_curve(relevance, n_relevant, step: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Mean precision and recall after every ``step`` results (and after the last one).

    ``relevance`` (Q, N) is the whole ranking of each query, ``n_relevant`` (Q,) the relevant items
    in the archive per query. At cut c (see :func:`pr_cut_points`): ``precision = hits_c / c``,
    ``recall = hits_c / n_relevant`` (0 for a query with no relevant item), each averaged over
    queries."""
    rel = _as_relevance(relevance)
    if rel.shape[0] == 0 or rel.shape[1] == 0:
        raise ValueError("no queries or no results")
    n_rel = np.broadcast_to(np.asarray(n_relevant, dtype=np.float64), (rel.shape[0],))
    cuts = pr_cut_points(rel.shape[1], step)
    hits = np.cumsum(rel, axis=1, dtype=np.float64)[:, cuts - 1]  # (Q, cuts)
    precision = (hits / cuts).mean(axis=0)
    recall_q = np.divide(hits, n_rel[:, None], out=np.zeros_like(hits), where=n_rel[:, None] > 0)
    return precision, recall_q.mean(axis=0)


def classwise_map(
    relevance,
    query_labels: Sequence,
    k: int | None = None,
    n_relevant=None,
    normalise: Literal["retrieved", "min"] = "retrieved",
) -> dict:
    """``{label: MAP@k over the queries with that label}`` (same AP as :func:`average_precision`),
    in sorted label order; ``None`` labels are skipped."""
    ap = average_precision(relevance, k, n_relevant, normalise)
    labels = list(query_labels)
    if len(labels) != ap.shape[0]:
        raise ValueError(f"{len(labels)} query labels for {ap.shape[0]} queries")
    groups: dict = {}
    for lab, a in zip(labels, ap.tolist(), strict=True):
        if lab is not None:
            groups.setdefault(lab, []).append(a)
    return {lab: float(np.mean(groups[lab])) for lab in sorted(groups)}


def ssm_accuracy_iou(similarity, labels, block: int = 1024) -> tuple[float, float]:
    """Accuracy and IoU of a predicted pairwise similarity matrix against the labels.

    ``similarity`` (N, N): +1/-1, bool or 0/1 (int8 and such), or packed bits (N, ceil(N/8)) uint8
    from ``np.packbits(S > 0, axis=1)``; an entry is "similar" when > 0. Ground truth G: similar when
    the two labels are equal. Both count the N*(N-1) off-diagonal entries only (the diagonal is
    trivially similar and is excluded):
    ``accuracy = #(S == G) / (N*(N-1))``, ``IoU = #(S and G) / #(S or G)`` (1.0 when both are empty).
    """
    lab = _labels(labels)
    n = lab.shape[0]
    s = np.asarray(similarity)
    packed = s.dtype == np.uint8 and s.ndim == 2 and s.shape == (n, -(-n // 8)) != (n, n)
    if not packed and s.shape != (n, n):
        raise ValueError(
            f"similarity must be ({n}, {n}) or packed ({n}, {-(-n // 8)}), got {s.shape}"
        )
    if n < 2:
        raise ValueError("need at least two items")
    agree = inter = union = 0
    for a in range(0, n, block):
        b = min(a + block, n)
        rows = np.unpackbits(s[a:b], axis=1, count=n).astype(bool) if packed else s[a:b] > 0
        g = lab[a:b, None] == lab[None, :]
        off = np.ones((b - a, n), dtype=bool)
        off[np.arange(b - a), np.arange(a, b)] = False
        agree += int(np.count_nonzero((rows == g) & off))
        inter += int(np.count_nonzero(rows & g & off))
        union += int(np.count_nonzero((rows | g) & off))
    accuracy = agree / (n * (n - 1))
    iou = inter / union if union else 1.0
    return float(accuracy), float(iou)
