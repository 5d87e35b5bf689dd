"""Retrieval quality measures used in the hashing literature (numpy only).

Inputs are relevance matrices: ``relevance[q, i]`` is True when the i-th result returned for query q
(rank i + 1) is relevant, usually because it has the query's label (:func:`relevance_from_labels`).
Multi-label archives (BigEarthNet) give each tile a label set, an (N, L) bool row: there a result
is relevant when it shares at least one label with the query (:func:`relevance_from_label_sets`),
and graded by the Jaccard index of the two sets (:func:`mean_jaccard_at_k`, :func:`ndcg_at_k`).
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


# -- multi-label archives (BigEarthNet) ------------------------------------------------------------
#
# A tile carries a set of labels, given as rows of an (N, L) bool matrix over L label names. The
# binary relevance is the usual BigEarthNet convention: a result is relevant when it shares at
# least one label with the query, so MAP@k, P@N and the PR curve above apply unchanged to the
# relevance matrix of :func:`relevance_from_label_sets`. The graded relevance is the Jaccard index
# of the two label sets, |A & B| / |A | B|: it lies in [0, 1], rewards a result whose labels are
# exactly the query's over one that shares a label among many others, and on single-label
# archives it is exactly the binary relevance (so the graded figures stay comparable).


def _as_sets(sets, name: str) -> np.ndarray:
    s = np.asarray(sets)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2:
        raise ValueError(f"{name} must be (items, labels), got shape {s.shape}")
    return s.astype(bool, copy=False)


def shared_label_counts(query_sets, ranked_ids, db_sets) -> np.ndarray:
    """(Q, k) int: labels shared by query q and its i-th result ``db_sets[ranked_ids[q, i]]``."""
    q = _as_sets(query_sets, "query_sets")
    db = _as_sets(db_sets, "db_sets")
    ids = np.asarray(ranked_ids, dtype=np.int64)
    if ids.ndim == 1:
        ids = ids[None, :]
    if q.shape[0] != ids.shape[0] or q.shape[1] != db.shape[1]:
        raise ValueError(
            f"{q.shape} query label sets for {ids.shape[0]} rankings over {db.shape} label sets"
        )
    # (Q, L) x (L, N) in float32 is exact for any realistic label count and is one BLAS call
    shared = q.astype(np.float32) @ db.T.astype(np.float32)
    return np.take_along_axis(shared, ids, axis=1).astype(np.int64)


def relevance_from_label_sets(query_sets, ranked_ids, db_sets) -> np.ndarray:
    """(Q, k) bool: the i-th result shares at least one label with query q (BigEarthNet's
    convention). A query or tile without labels is never relevant."""
    return shared_label_counts(query_sets, ranked_ids, db_sets) > 0


def jaccard_from_label_sets(query_sets, ranked_ids, db_sets) -> np.ndarray:
    """(Q, k) float64: Jaccard index |A & B| / |A | B| of query q's labels and its i-th
    result's; 0 when both sets are empty (nothing is known to be shared)."""
    q = _as_sets(query_sets, "query_sets")
    db = _as_sets(db_sets, "db_sets")
    ids = np.asarray(ranked_ids, dtype=np.int64)
    if ids.ndim == 1:
        ids = ids[None, :]
    shared = shared_label_counts(q, ids, db).astype(np.float64)
    union = q.sum(axis=1)[:, None] + db.sum(axis=1)[ids] - shared
    return np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)


def n_relevant_from_label_sets(query_sets, db_sets) -> np.ndarray:
    """(Q,) int64: archive items sharing at least one label with each query (subtract 1 for a
    leave-one-out query with labels, which shares them with itself)."""
    q = _as_sets(query_sets, "query_sets")
    db = _as_sets(db_sets, "db_sets")
    return ((q.astype(np.float32) @ db.T.astype(np.float32)) > 0).sum(axis=1).astype(np.int64)


def _as_gains(gains, k: int | None) -> np.ndarray:
    g = np.asarray(gains, dtype=np.float64)
    if g.ndim == 1:
        g = g[None, :]
    if g.ndim != 2:
        raise ValueError(f"gains must be (queries, ranks), got shape {g.shape}")
    if k is not None:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        g = g[:, :k]
    return g


def mean_jaccard(jaccard, k: int | None = None) -> np.ndarray:
    """(Q,) mean Jaccard index of each query's top k results (``k`` beyond the ranking: all)."""
    g = _as_gains(jaccard, k)
    if g.shape[1] == 0:
        raise ValueError("no results")
    return g.mean(axis=1)


def mean_jaccard_at_k(jaccard, k: int | None = None) -> float:
    """Mean over queries of :func:`mean_jaccard` (the graded counterpart of P@k)."""
    v = mean_jaccard(jaccard, k)
    if v.size == 0:
        raise ValueError("no queries")
    return float(v.mean())


def _dcg(g: np.ndarray) -> np.ndarray:
    return (g / np.log2(np.arange(2, g.shape[1] + 2, dtype=np.float64))).sum(axis=1)


def ndcg(gains, ideal_gains, k: int | None = None) -> np.ndarray:
    """(Q,) NDCG@k = DCG@k / IDCG@k with ``DCG@k = sum_{i <= k} gain_i / log2(i + 1)``.

    ``gains`` (Q, >= k): the gain of each ranked result (here the Jaccard index of the label
    sets, :func:`jaccard_from_label_sets`; linear, so a gain of 1 is a result with exactly the
    query's labels). ``ideal_gains`` (Q, M): the gains of every candidate of the query, in any
    order (the leave-one-out archive); IDCG@k is the DCG of their best k. NDCG = 0 for a query
    no candidate has any gain for (as AP is 0 with no relevant item)."""
    g = _as_gains(gains, k)
    kk = g.shape[1]
    ideal = _as_gains(ideal_gains, None)
    if ideal.shape[0] != g.shape[0]:
        raise ValueError(f"{ideal.shape[0]} ideal rows for {g.shape[0]} queries")
    m = min(kk, ideal.shape[1])
    if m < ideal.shape[1]:
        top = -np.partition(-ideal, m - 1, axis=1)[:, :m]
    else:
        top = ideal
    top = -np.sort(-top, axis=1)[:, :kk]
    idcg = _dcg(top)
    dcg = _dcg(g)
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def ndcg_at_k(gains, ideal_gains, k: int | None = None) -> float:
    """Mean over queries of :func:`ndcg`."""
    v = ndcg(gains, ideal_gains, k)
    if v.size == 0:
        raise ValueError("no queries")
    return float(v.mean())


def labelwise_ap_sums(
    query_sets, ranked_ids, db_sets, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per label: (sum of AP@k, number of queries) over the queries that carry that label, where
    a result is relevant to the label when it carries it too ('retrieved' normalisation).
    Sums rather than means so an evaluation can add them up chunk by chunk."""
    q = _as_sets(query_sets, "query_sets")
    db = _as_sets(db_sets, "db_sets")
    ids = np.asarray(ranked_ids, dtype=np.int64)
    if ids.ndim == 1:
        ids = ids[None, :]
    if k is not None:
        ids = ids[:, :k]
    n_labels = q.shape[1]
    sums = np.zeros(n_labels)
    counts = np.zeros(n_labels, np.int64)
    for j in range(n_labels):
        rows = np.flatnonzero(q[:, j])
        if rows.size == 0:
            continue
        rel = db[ids[rows], j]
        sums[j] = average_precision(rel, None, None, "retrieved").sum()
        counts[j] = rows.size
    return sums, counts


def labelwise_map(query_sets, ranked_ids, db_sets, label_names: Sequence[str], k=None) -> dict:
    """``{label: MAP@k}`` over the queries carrying each label, relevance = the result carries
    that label (:func:`labelwise_ap_sums`); labels no query carries are left out."""
    sums, counts = labelwise_ap_sums(query_sets, ranked_ids, db_sets, k)
    names = list(label_names)
    if len(names) != sums.shape[0]:
        raise ValueError(f"{len(names)} label names for {sums.shape[0]} labels")
    return {names[j]: float(sums[j] / counts[j]) for j in np.argsort(names) if counts[j]}
