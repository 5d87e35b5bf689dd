"""The one ranker: queries against a database of codes, optionally leaving one entry out per query.

Everything that ranks codes goes through here: search, the evaluation of an index, the held-out
MAP printed while a model trains and the experiments' tables. Binary codes are ranked by Hamming
distance of their signs (:mod:`rsgui.hamming`), float codes by cosine similarity
(:mod:`rsgui.cosine`); ties always fall in database order, so the same codes give the same ranking
wherever they are ranked.

Leave-one-out (each tile querying all the others) is ``exclude``: the query's own database entry
is removed from its ranking, exactly as if it were not in the database.
"""

from __future__ import annotations

import numpy as np

from rsgui.codes import pack_codes, unpack_codes
from rsgui.cosine import cosine_topk, normalise_rows
from rsgui.hamming import PackedCodes, hamming_distances, hamming_topk

# Query rows x database rows ranked at a time by :func:`leave_one_out` (bounds the temporaries).
_CHUNK_CELLS = 1 << 24


def rank(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    binary: bool,
    k: int | None = None,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """(nq, k) database positions, nearest first, ties by database position.

    ``query_codes`` (nq, bits) and ``db_codes`` (n, bits): encoder output; with ``binary`` a bit is
    ``code > 0`` and the distance is Hamming, else the codes are compared by cosine. ``k``: how
    many to return (``None``: the whole ranking). ``exclude``: per query, a database position to
    leave out of its ranking (-1: none); with any exclusion at most n - 1 positions are returned.
    """
    q = _rows(query_codes)
    db = _rows(db_codes)
    if q.shape[1] != db.shape[1]:
        raise ValueError(f"query codes have {q.shape[1]} dimensions, the database {db.shape[1]}")
    if binary:
        bits = db.shape[1]
        return rank_hamming(PackedCodes(pack_codes(db), bits), pack_codes(q), k, exclude)
    return rank_cosine(normalise_rows(db), q, k, exclude)


def leave_one_out(codes: np.ndarray, binary: bool, k: int | None = None) -> np.ndarray:
    """(n, k) ranking of the other codes for every code (itself left out), ties by position.

    ``k`` is capped at n - 1 (``None``: the whole ranking). Queries are ranked in chunks, so only
    the result grows with n squared."""
    codes = _rows(codes)
    n = codes.shape[0]
    if n < 2:
        raise ValueError(f"leave-one-out ranking needs at least 2 codes, got {n}")
    kk = n - 1 if k is None else min(int(k), n - 1)
    out = np.empty((n, kk), np.int64)
    chunk = max(1, _CHUNK_CELLS // n)
    if binary:
        packed = pack_codes(codes)
        db = PackedCodes(packed, codes.shape[1])
        for a in range(0, n, chunk):
            q = np.arange(a, min(a + chunk, n))
            out[q] = rank_hamming(db, packed[q], kk, q)
    else:
        unit = normalise_rows(codes)
        for a in range(0, n, chunk):
            q = np.arange(a, min(a + chunk, n))
            out[q] = rank_cosine(unit, codes[q], kk, q)  # normalised alike, row by row
    return out


def rank_hamming(
    db: PackedCodes,
    query_packed: np.ndarray,
    k: int | None = None,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`rank` for packed codes: ``db`` prepared once (an index's), queries packed uint8."""
    q = np.asarray(query_packed)
    q = q[None, :] if q.ndim == 1 else q
    ex, kk = _plan(q.shape[0], db.n, k, exclude)
    if 4 * (kk + 1) >= db.n:  # most of the database: one stable (radix) sort of all distances
        d = hamming_distances(db, q, compact=True)
        if db.bits >= np.iinfo(d.dtype).max:  # room for a distance beyond every real one
            d = d.astype(np.int32)
        if ex is not None:
            rows = np.flatnonzero(ex >= 0)
            d[rows, ex[rows]] = np.iinfo(d.dtype).max  # sorts last, then cut off
        return np.argsort(d, axis=1, kind="stable")[:, :kk]
    if ex is None:
        return hamming_topk(db, q, kk)[0]
    return drop_excluded(ex, kk, *hamming_topk(db, q, kk + 1))[0]


def rank_cosine(
    db_unit: np.ndarray,
    queries: np.ndarray,
    k: int | None = None,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`rank` for float codes: ``db_unit`` rows already unit length (an index's), the
    queries as the encoder gave them."""
    q = _rows(queries)
    ex, kk = _plan(q.shape[0], db_unit.shape[0], k, exclude)
    if 4 * (kk + 1) >= db_unit.shape[0]:  # most of the database: one stable sort of everything
        s = normalise_rows(q) @ np.asarray(db_unit, dtype=np.float32).T
        if ex is not None:
            rows = np.flatnonzero(ex >= 0)
            s[rows, ex[rows]] = -np.inf  # sorts last, then cut off
        return np.argsort(-s, axis=1, kind="stable")[:, :kk]
    if ex is None:
        return cosine_topk(db_unit, q, kk, normalised=True)[0]
    return drop_excluded(ex, kk, *cosine_topk(db_unit, q, kk + 1, normalised=True))[0]


def _rows(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None, :]
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, bits), got shape {codes.shape}")
    return codes


def exclusions(exclude, nq: int, n: int) -> np.ndarray | None:
    """``exclude`` checked as one database position (or -1) per query; None when it leaves
    nothing out."""
    if exclude is None:
        return None
    ex = np.asarray(exclude, dtype=np.int64).reshape(-1)
    if ex.shape[0] != nq:
        raise ValueError(f"exclude needs one entry per query ({nq}), got {ex.shape[0]}")
    if (ex >= n).any():
        raise ValueError(f"exclude holds positions beyond the database ({n} entries)")
    return ex if (ex >= 0).any() else None


def drop_excluded(exclude: np.ndarray, k: int, idx: np.ndarray, *aligned: np.ndarray):
    """From top-(k + 1) rankings ``idx`` (and arrays ``aligned`` with them, e.g. distances):
    each row without its excluded entry, or without its last one when the entry is not there;
    the first ``k`` columns of each."""
    hit = idx == exclude[:, None]
    keep = ~hit
    keep[~hit.any(axis=1), idx.shape[1] - 1] = False
    shape = (idx.shape[0], idx.shape[1] - 1)
    return tuple(a[keep].reshape(shape)[:, :k] for a in (idx, *aligned))


def _plan(nq: int, n: int, k: int | None, exclude) -> tuple[np.ndarray | None, int]:
    """The exclusions (None when there are none) and how many positions each query gets."""
    ex = exclusions(exclude, nq, n)
    limit = n - (ex is not None)
    if k is not None and int(k) < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return ex, limit if k is None else min(int(k), limit)


# -- several examples: one ranking for a set of positive (and negative) codes ---------------------

# How the distances of a candidate to several positive examples become one: the sum (equivalently
# the mean), the distance to their bitwise majority code, or the smallest.
COMBINES: tuple[str, ...] = ("sum", "majority", "min")
_EXAMPLE_BLOCK = 16  # examples whose distances are held at once


def majority_code(packed: np.ndarray, bits: int) -> np.ndarray:
    """(1, nbytes) packed bitwise majority of (P, nbytes) packed codes; a tie (an even number of
    examples split half and half) takes the first example's bit, so the result is deterministic."""
    b = unpack_codes(packed, bits) > 0  # (P, bits)
    votes = b.sum(axis=0) * 2
    maj = np.where(votes == b.shape[0], b[0], votes > b.shape[0])
    return np.packbits(maj[None, :], axis=1)


def set_scores(
    db: PackedCodes,
    positives: np.ndarray,
    negatives: np.ndarray | None = None,
    combine: str = "sum",
    neg_weight: float = 0.0,
) -> np.ndarray:
    """(N,) score of every database code for a set of packed example codes, lower = nearer.

    ``combine`` (:data:`COMBINES`): ``sum`` of the Hamming distances to the positives (int64),
    distance to their ``majority`` code, or the ``min`` distance. With ``negatives`` and a
    ``neg_weight`` > 0 the score becomes float64 ``P(x) - neg_weight * mean_n d(n, x)`` where
    ``P`` is the positive part per example (the mean for ``sum``), so codes near a negative move
    down. Integer arithmetic until the negatives: a single example gives :func:`rank_hamming`'s
    distances exactly."""
    pos = _packed_rows(positives, db)
    if pos.shape[0] == 0:
        raise ValueError("a set query needs at least one positive example")
    if combine not in COMBINES:
        raise ValueError(f"unknown combination {combine!r}; choose from {', '.join(COMBINES)}")
    if combine == "majority":
        score = hamming_distances(db, majority_code(pos, db.bits))[0].astype(np.int64)
    else:
        score = None
        for a in range(0, pos.shape[0], _EXAMPLE_BLOCK):
            d = hamming_distances(db, pos[a : a + _EXAMPLE_BLOCK])
            part = d.sum(axis=0, dtype=np.int64) if combine == "sum" else d.min(axis=0)
            if score is None:
                score = part.astype(np.int64)
            elif combine == "sum":
                score += part
            else:
                np.minimum(score, part, out=score)
    neg = None if negatives is None else _packed_rows(negatives, db)
    if neg is None or neg.shape[0] == 0 or neg_weight <= 0:
        return score
    neg_sum = np.zeros(db.n, np.int64)
    for a in range(0, neg.shape[0], _EXAMPLE_BLOCK):
        neg_sum += hamming_distances(db, neg[a : a + _EXAMPLE_BLOCK]).sum(axis=0, dtype=np.int64)
    per = score / pos.shape[0] if combine == "sum" else score.astype(np.float64)
    return per - float(neg_weight) * (neg_sum / neg.shape[0])


def cosine_set_scores(
    db_unit: np.ndarray,
    positives: np.ndarray,
    negatives: np.ndarray | None = None,
    combine: str = "sum",
    neg_weight: float = 0.0,
) -> np.ndarray:
    """:func:`set_scores` for float codes: distance 1 - cosine; ``majority`` is the distance to
    the normalised mean of the positives."""
    pos = normalise_rows(_rows(positives).astype(np.float32))
    if pos.shape[0] == 0:
        raise ValueError("a set query needs at least one positive example")
    if combine not in COMBINES:
        raise ValueError(f"unknown combination {combine!r}; choose from {', '.join(COMBINES)}")
    db_unit = np.asarray(db_unit, dtype=np.float32)
    if combine == "majority":
        score = 1.0 - (db_unit @ normalise_rows(pos.mean(axis=0, keepdims=True))[0]).astype(
            np.float64
        )
    else:
        d = 1.0 - (pos @ db_unit.T).astype(np.float64)
        score = d.sum(axis=0) if combine == "sum" else d.min(axis=0)
    if negatives is None or len(negatives) == 0 or neg_weight <= 0:
        return score
    neg = normalise_rows(_rows(negatives).astype(np.float32))
    neg_mean = (1.0 - (neg @ db_unit.T).astype(np.float64)).mean(axis=0)
    per = score / pos.shape[0] if combine == "sum" else score
    return per - float(neg_weight) * neg_mean


def rank_scores(
    scores: np.ndarray,
    k: int | None = None,
    allowed: np.ndarray | None = None,
    exclude=None,
) -> np.ndarray:
    """Positions by ascending score, ties by database position, at most ``k`` of them.

    ``allowed``: (N,) bool mask of the positions that may be ranked (a filter); ``exclude``:
    positions left out (the examples themselves)."""
    s = np.asarray(scores).reshape(-1)
    keep = np.ones(s.shape[0], bool) if allowed is None else np.array(allowed, bool, copy=True)
    if keep.shape != s.shape:
        raise ValueError(f"the filter covers {keep.shape[0]} positions, the scores {s.shape[0]}")
    if exclude is not None:
        ex = np.asarray(list(exclude), dtype=np.int64).reshape(-1)
        keep[ex[(ex >= 0) & (ex < s.shape[0])]] = False
    idx = np.flatnonzero(keep)
    order = idx[np.argsort(s[idx], kind="stable")]
    if k is not None:
        if int(k) < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        order = order[: int(k)]
    return order


def _packed_rows(packed: np.ndarray, db: PackedCodes) -> np.ndarray:
    p = np.asarray(packed)
    p = p[None, :] if p.ndim == 1 else p
    if p.dtype != np.uint8 or p.ndim != 2 or p.shape[1] != db.nbytes:
        raise ValueError(
            f"example codes must be packed uint8 with {db.nbytes} bytes per row, got "
            f"{p.dtype} {p.shape}"
        )
    return p
