"""Exact top-k search: Hamming distance over packed binary codes, cosine over float features.

Why not ``argpartition`` over all distances: Hamming distances are small integers (0..bits), so the
k nearest codes are exactly those closer than a threshold distance ``t`` plus the first few at ``t``
in archive order. The search estimates ``t`` from a fixed sample of the archive, scans the archive in
cache-sized blocks keeping only the codes within ``t`` (XOR + ``np.bitwise_count`` on 64-bit words),
and sorts those few candidates by (distance, archive position). A query whose estimate proves too
low (fewer than k candidates) is redone with its exact threshold, so results are always exact, with
ties broken by archive order (lower index first).
"""

from __future__ import annotations

import numpy as np

from rsgui.codes import n_bytes

# Rows of the archive sampled once to estimate each query's threshold distance.
SAMPLE_ROWS = 8192
# Scan tile: query rows x archive rows processed together (XOR buffer ~ 128-256 KiB, stays in cache).
SINGLE_BLOCK = 65536
BATCH_BLOCK = 8192
QUERY_BLOCK = 16


class PackedCodes:
    """Archive codes prepared for scanning: packed bytes regrouped as (words, N) uint64 columns.

    Preparing once per index (like adding codes to a search structure) keeps the per-query work to
    XOR and popcount; the byte order inside a word does not matter to a popcount of an XOR.
    """

    def __init__(self, packed: np.ndarray, bits: int | None = None):
        packed = np.asarray(packed)
        if packed.dtype != np.uint8 or packed.ndim != 2:
            raise ValueError(
                f"packed codes must be a 2-D uint8 array, got {packed.dtype} {packed.shape}"
            )
        self.n, self.nbytes = packed.shape
        self.bits = int(bits) if bits is not None else 8 * self.nbytes
        if n_bytes(self.bits) != self.nbytes:
            raise ValueError(
                f"{self.bits}-bit codes need {n_bytes(self.bits)} bytes, got {self.nbytes}"
            )
        self.words = np.ascontiguousarray(to_words(packed).T)  # (W, N)
        self._sample: tuple[np.ndarray, int] | None = None

    def __len__(self) -> int:
        return self.n

    @property
    def n_words(self) -> int:
        return self.words.shape[0]

    def sample(self) -> tuple[np.ndarray, int]:
        """Every ``stride``-th archive row, (W, S) uint64, and the stride."""
        if self._sample is None:
            stride = max(1, -(-self.n // SAMPLE_ROWS))
            self._sample = (np.ascontiguousarray(self.words[:, ::stride]), stride)
        return self._sample


def to_words(packed: np.ndarray) -> np.ndarray:
    """(N, nbytes) uint8 -> (N, ceil(nbytes / 8)) uint64, zero-padded (padding never adds distance)."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim == 1:
        packed = packed[None, :]
    n, nb = packed.shape
    w = -(-nb // 8)
    if nb != 8 * w:
        padded = np.zeros((n, 8 * w), dtype=np.uint8)
        padded[:, :nb] = packed
        packed = padded
    return np.ascontiguousarray(packed).view(np.uint64).reshape(n, w)


def _dist_dtype(bits: int):
    return np.uint8 if bits <= 255 else np.uint16


def _distances(words: np.ndarray, qw: np.ndarray, bits: int) -> np.ndarray:
    """All distances, (Q, N), between (W, N) archive words and (Q, W) query words."""
    d = np.zeros((qw.shape[0], words.shape[1]), dtype=_dist_dtype(bits))
    for w in range(words.shape[0]):
        d += np.bitwise_count(words[w][None, :] ^ qw[:, w, None]).astype(d.dtype, copy=False)
    return d


def hamming_distances(db: np.ndarray | PackedCodes, queries: np.ndarray) -> np.ndarray:
    """(Q, N) int32 Hamming distances between packed queries and packed archive codes."""
    db = db if isinstance(db, PackedCodes) else PackedCodes(db)
    qw = _query_words(db, queries)
    return _distances(db.words, qw, db.bits).astype(np.int32)


def _query_words(db: PackedCodes, queries: np.ndarray) -> np.ndarray:
    queries = np.asarray(queries)
    if queries.ndim == 1:
        queries = queries[None, :]
    if queries.dtype != np.uint8 or queries.shape[1] != db.nbytes:
        raise ValueError(
            f"query codes must be packed uint8 with {db.nbytes} bytes per row, "
            f"got {queries.dtype} {queries.shape}"
        )
    return to_words(queries)


def hamming_topk(
    db: np.ndarray | PackedCodes, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k archive codes nearest to each packed query, exact.

    ``db``: (N, nbytes) packed uint8 or a :class:`PackedCodes` (prepare once for repeated search);
    ``queries``: (Q, nbytes) or (nbytes,) packed uint8. Returns ``idx`` (Q, k) int64 and ``dist``
    (Q, k) int32 sorted by distance, ties by archive position; ``k`` larger than N gives N columns.
    """
    db = db if isinstance(db, PackedCodes) else PackedCodes(db)
    qw = _query_words(db, queries)
    nq, n = qw.shape[0], db.n
    k = min(int(k), n)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if nq == 0 or k == 0:
        return np.zeros((nq, k), np.int64), np.zeros((nq, k), np.int32)
    thresholds = _estimate_thresholds(db, qw, k)
    qi, di, dv = _scan(db, qw, thresholds)
    counts = np.bincount(qi, minlength=nq)
    short = np.flatnonzero(counts < k)
    if short.size:  # estimate too low for these queries: redo them with their exact threshold
        d = _distances(db.words, qw[short], db.bits)
        exact = np.array([_kth_smallest(row, k) for row in d], dtype=np.int64)
        keep = ~np.isin(qi, short)
        q2, d2, v2 = _scan(db, qw[short], exact)
        qi = np.concatenate([qi[keep], short[q2]])
        di = np.concatenate([di[keep], d2])
        dv = np.concatenate([dv[keep], v2])
        counts = np.bincount(qi, minlength=nq)
    return _select(qi, di, dv, counts, nq, n, k, db.bits)


def _kth_smallest(row: np.ndarray, k: int) -> int:
    return int(np.partition(row, k - 1)[k - 1])


def _estimate_thresholds(db: PackedCodes, qw: np.ndarray, k: int) -> np.ndarray:
    """Per query, a distance ``t`` with (very likely) at least k archive codes within ``t``.

    From the sample's distances: the rank expected to hold the k-th nearest, raised by a margin of
    three standard deviations. When the sample is the whole archive the threshold is exact."""
    words, stride = db.sample()
    if stride == 1:
        rank = k - 1
    else:
        expected = k / stride
        rank = int(expected + 3.0 * np.sqrt(expected) + 3.0)
    rank = min(rank, words.shape[1] - 1)
    d = _distances(words, qw, db.bits)
    # a stable sort of small unsigned integers is a radix sort: faster than partition here
    return np.sort(d, axis=1, kind="stable")[:, rank].astype(np.int64)


def _scan(db: PackedCodes, qw: np.ndarray, thresholds: np.ndarray):
    """(query row, archive index, distance) of every code within its query's threshold."""
    words, n, nw = db.words, db.n, db.n_words
    nq = qw.shape[0]
    dt = _dist_dtype(db.bits)
    qb = 1 if nq == 1 else min(nq, QUERY_BLOCK)
    nb = min(n, SINGLE_BLOCK if nq == 1 else BATCH_BLOCK)
    size = qb * nb  # flat buffers, reshaped per tile so every view is contiguous
    xbuf, mbuf = np.empty(size, np.uint64), np.empty(size, np.bool_)
    cbuf, dbuf = np.empty(size, dt), np.empty(size, dt)
    t = np.minimum(thresholds, np.iinfo(dt).max).astype(dt)[:, None]
    out_q, out_i, out_d = [], [], []
    for s in range(0, n, nb):
        e = min(s + nb, n)
        m = e - s
        for a in range(0, nq, qb):
            b = min(a + qb, nq)
            r = b - a
            x, c, d, mask = (buf[: r * m].reshape(r, m) for buf in (xbuf, cbuf, dbuf, mbuf))
            np.bitwise_xor(words[0, s:e][None, :], qw[a:b, 0, None], out=x)
            np.bitwise_count(x, out=d, casting="unsafe")
            for w in range(1, nw):
                np.bitwise_xor(words[w, s:e][None, :], qw[a:b, w, None], out=x)
                np.bitwise_count(x, out=c, casting="unsafe")
                np.add(d, c, out=d)
            np.less_equal(d, t[a:b], out=mask)
            flat = np.flatnonzero(mask)
            if flat.size == 0:
                continue
            if r == 1:
                out_q.append(np.full(flat.size, a, np.int64))
                out_i.append(flat + s)
            else:
                row, col = np.divmod(flat, m)
                out_q.append(row + a)
                out_i.append(col + s)
            out_d.append(dbuf[flat])
    if not out_q:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (
        np.concatenate(out_q),
        np.concatenate(out_i),
        np.concatenate(out_d).astype(np.int64),
    )


def _select(qi, di, dv, counts, nq, n, k, bits):
    """First k candidates of each query by (distance, archive index)."""
    key = (qi * (bits + 1) + dv) * n + di
    key.sort()
    starts = np.zeros(nq, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    take = key[starts[:, None] + np.arange(k)]
    idx = take % n
    dist = (take // n) % (bits + 1)
    return idx.astype(np.int64), dist.astype(np.int32)


def cosine_topk(db: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k archive features most cosine-similar to each query, exact, ties by archive position.

    ``db`` (N, D), ``queries`` (Q, D) or (D,). Returns ``idx`` (Q, k) int64 and ``similarity``
    (Q, k) float32, descending; zero vectors have similarity 0 to everything."""
    db = normalise_rows(db)
    q = normalise_rows(queries)
    if q.shape[1] != db.shape[1]:
        raise ValueError(f"query features have {q.shape[1]} dimensions, the archive {db.shape[1]}")
    n, nq = db.shape[0], q.shape[0]
    k = min(int(k), n)
    idx = np.zeros((nq, k), np.int64)
    sim = np.zeros((nq, k), np.float32)
    if k == 0:
        return idx, sim
    chunk = max(1, (1 << 24) // max(n, 1))  # ~64 MiB of similarities at a time
    for a in range(0, nq, chunk):
        s = q[a : a + chunk] @ db.T
        for j, row in enumerate(s):
            kth = np.partition(row, n - k)[n - k]
            cand = np.flatnonzero(row >= kth)
            order = np.argsort(-row[cand], kind="stable")[:k]
            idx[a + j] = cand[order]
            sim[a + j] = row[cand[order]]
    return idx, sim


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """(N, D) float32 rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0).astype(np.float32)
