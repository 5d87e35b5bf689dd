"""Exact top-k Hamming search over packed binary codes (cosine search is :mod:`rsgui.cosine`).

Hamming distances are small integers (0..bits), so the k nearest codes are exactly those closer than
a threshold distance ``t`` plus the first few at ``t`` in archive order; no sort of all N distances
is needed. Two interchangeable backends give identical results, ties broken by archive order:

* ``numba`` (used when numba is installed, for large archives): one compiled pass over the archive
  per block of queries; each query keeps the codes closer than its running threshold and a histogram
  of their distances, lowering the threshold as closer codes arrive.
* ``numpy``: estimates each query's threshold from a fixed sample of the archive, scans the archive
  in cache-sized tiles with XOR + ``np.bitwise_count`` on 64-bit words keeping the codes within the
  threshold, then sorts those few candidates by (distance, position). A query whose estimate proves
  too low (fewer than k candidates) is redone with its exact threshold.

When k is a large share of the archive both simply sort all distances (a radix sort of small ints).
"""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np

from rsgui.codes import n_bytes

# Rows of the archive sampled once to estimate each query's threshold distance (numpy backend).
SAMPLE_ROWS = 8192
# numpy scan tile: query rows x archive rows processed together (buffers stay in cache).
SINGLE_BLOCK = 65536
BATCH_BLOCK = 8192
QUERY_BLOCK = 16
# numba scan: archive rows per block (its words stay in L1/L2 while every query passes over them).
NUMBA_BLOCK = 1024
# 'auto' uses numba (when installed) from this many archive rows on; below, numpy is quick enough
# and nothing is compiled.
NUMBA_MIN_ROWS = 100_000
# Bound on per-chunk work arrays: queries are processed in chunks of about this many entries.
CHUNK_ENTRIES = 1 << 22

BACKENDS = ("auto", "numpy", "numba")


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
        self.words = np.ascontiguousarray(to_words(_clear_padding(packed, self.bits)).T)  # (W, N)
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


def _clear_padding(packed: np.ndarray, bits: int) -> np.ndarray:
    """Zero the unused low bits of the last byte, so a stray bit there never adds distance."""
    if bits % 8 == 0 or packed.shape[0] == 0:
        return packed
    mask = np.uint8((0xFF << (8 - bits % 8)) & 0xFF)
    if not np.any(packed[:, -1] & ~mask):
        return packed
    packed = packed.copy()
    packed[:, -1] &= mask
    return packed


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
    n = words.shape[1]
    d = np.zeros((qw.shape[0], n), dtype=_dist_dtype(bits))
    step = max(1, (1 << 22) // max(n, 1))  # keeps the uint64 XOR temporary near 32 MiB
    for a in range(0, qw.shape[0], step):
        for w in range(words.shape[0]):
            x = words[w][None, :] ^ qw[a : a + step, w, None]
            d[a : a + step] += np.bitwise_count(x).astype(d.dtype, copy=False)
    return d


def hamming_distances(
    db: np.ndarray | PackedCodes, queries: np.ndarray, compact: bool = False
) -> np.ndarray:
    """(Q, N) Hamming distances between packed queries and packed archive codes: int32, or with
    ``compact`` the smallest unsigned type that holds ``bits`` (what a radix sort wants)."""
    db = db if isinstance(db, PackedCodes) else PackedCodes(db)
    qw = _query_words(db, queries)
    d = _distances(db.words, qw, db.bits)
    return d if compact else d.astype(np.int32)


def _query_words(db: PackedCodes, queries: np.ndarray) -> np.ndarray:
    queries = np.asarray(queries)
    if queries.ndim == 1:
        queries = queries[None, :]
    if queries.dtype != np.uint8 or queries.shape[1] != db.nbytes:
        raise ValueError(
            f"query codes must be packed uint8 with {db.nbytes} bytes per row, "
            f"got {queries.dtype} {queries.shape}"
        )
    return to_words(_clear_padding(queries, db.bits))


def hamming_topk(
    db: np.ndarray | PackedCodes, queries: np.ndarray, k: int, backend: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k archive codes nearest to each packed query, exact.

    ``db``: (N, nbytes) packed uint8 or a :class:`PackedCodes` (prepare once for repeated search);
    ``queries``: (Q, nbytes) or (nbytes,) packed uint8. Returns ``idx`` (Q, k) int64 and ``dist``
    (Q, k) int32 sorted by distance, ties by archive position; ``k`` larger than N gives N columns.
    ``backend``: 'auto' (default, or the ``RSGUI_HAMMING_BACKEND`` environment variable), 'numpy'
    or 'numba'.
    """
    db = db if isinstance(db, PackedCodes) else PackedCodes(db)
    qw = _query_words(db, queries)
    nq, n = qw.shape[0], db.n
    if int(k) < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    k = min(int(k), n)
    idx = np.zeros((nq, k), np.int64)
    dist = np.zeros((nq, k), np.int32)
    if nq == 0 or k == 0:
        return idx, dist
    use = _choose_backend(backend, n)
    full_sort = 4 * k >= n
    per_query = n if full_sort else min(n, 8 * k + 2048)
    chunk = max(1, CHUNK_ENTRIES // per_query)
    for a in range(0, nq, chunk):
        part = qw[a : a + chunk]
        if full_sort:
            i, d = _topk_sorted(db, part, k)
        elif use == "numba":
            i, d = _numba_kernel()(db.words, part, k, db.bits, NUMBA_BLOCK, min(n, 2 * k + 1024))
        else:
            i, d = _topk_numpy(db, part, k)
        idx[a : a + chunk], dist[a : a + chunk] = i, d
    return idx, dist


def _topk_sorted(db: PackedCodes, qw: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All distances, then a stable sort (radix for small unsigned ints): ties in archive order."""
    d = _distances(db.words, qw, db.bits)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)  # cast on assignment into the int results


def _topk_numpy(db: PackedCodes, qw: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    nq = qw.shape[0]
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
    return _select(qi, di, dv, counts, nq, db.n, k, db.bits)


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


# -- backend choice and the compiled kernel --------------------------------------------------------

_numba_state: dict = {}
_numba_lock = threading.Lock()


def numba_available() -> bool:
    """True when numba is installed and the kernel compiles (compiled on the first call)."""
    try:
        _numba_kernel()
    except Exception:  # noqa: BLE001 - any failure means: use numpy
        return False
    return True


def _choose_backend(backend: str | None, n: int) -> str:
    backend = backend or os.environ.get("RSGUI_HAMMING_BACKEND", "auto")
    if backend not in BACKENDS:
        raise ValueError(f"unknown Hamming backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "numba":
        _numba_kernel()  # raises a clear ImportError when numba is missing
        return "numba"
    if backend == "auto" and n >= NUMBA_MIN_ROWS and numba_available():
        return "numba"
    return "numpy"


def _numba_kernel():
    """The compiled top-k kernel, built once (cached on disk by numba where it can)."""
    with _numba_lock:
        return _build_numba_kernel()


def _build_numba_kernel():
    if "kernel" in _numba_state:
        return _numba_state["kernel"]
    if "error" in _numba_state:
        raise _numba_state["error"]
    try:
        import numba
        from numba import types
        from numba.extending import intrinsic
    except ImportError as exc:
        err = ImportError(f"the 'numba' Hamming backend needs numba installed ({exc})")
        _numba_state["error"] = err
        raise err from None

    @intrinsic
    def popcount64(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return types.uint64(types.uint64), codegen

    def jit(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # a frozen application may have nowhere to cache: compile each run instead
                return numba.njit(cache=True, nogil=True, boundscheck=False)(fn)
            except Exception:  # noqa: BLE001
                return numba.njit(cache=False, nogil=True, boundscheck=False)(fn)

    globals()["_nb_popcount64"] = popcount64
    globals()["_nb_block_distances"] = jit(_block_distances_py)
    kernel = jit(_topk_kernel_py)
    try:  # compile now (or load from the cache), so a failure shows here and 'auto' avoids it
        words = np.zeros((1, 4), np.uint64)
        kernel(words, np.zeros((1, 1), np.uint64), 1, 64, NUMBA_BLOCK, 4)
    except Exception as exc:  # noqa: BLE001
        err = ImportError(f"the numba Hamming kernel does not compile here ({exc})")
        _numba_state["error"] = err
        raise err from None
    _numba_state["kernel"] = kernel
    return kernel


def _nb_popcount64(x):  # replaced by an LLVM ctpop intrinsic when the kernel is compiled
    return int(x).bit_count()


def _block_distances_py(words, qv, s, m, dist):
    """dist[:m] = Hamming distances of archive rows s..s+m to one query, and their minimum
    (vectorised by LLVM)."""
    nw = words.shape[0]
    if nw == 1:
        row = words[0, s : s + m]
        q0 = qv[0]
        mn = np.int32(64)
        for i in range(m):
            d = np.int32(_nb_popcount64(row[i] ^ q0))
            dist[i] = d
            mn = min(mn, d)
        return mn
    if nw == 2:
        row0 = words[0, s : s + m]
        row1 = words[1, s : s + m]
        q0 = qv[0]
        q1 = qv[1]
        mn = np.int32(128)
        for i in range(m):
            d = np.int32(_nb_popcount64(row0[i] ^ q0)) + np.int32(_nb_popcount64(row1[i] ^ q1))
            dist[i] = d
            mn = min(mn, d)
        return mn
    row = words[0, s : s + m]
    q0 = qv[0]
    for i in range(m):
        dist[i] = np.int32(_nb_popcount64(row[i] ^ q0))
    for w in range(1, nw - 1):
        row = words[w, s : s + m]
        qq = qv[w]
        for i in range(m):
            dist[i] += np.int32(_nb_popcount64(row[i] ^ qq))
    row = words[nw - 1, s : s + m]
    qq = qv[nw - 1]
    mn = np.int32(64 * nw)
    for i in range(m):
        d = dist[i] + np.int32(_nb_popcount64(row[i] ^ qq))
        dist[i] = d
        mn = min(mn, d)
    return mn


_nb_block_distances = _block_distances_py


def _topk_kernel_py(words, qw, k, bits, block, cap):
    """Exact top-k of every query in one pass over (W, N) archive words; ties in archive order.

    Per query: a buffer of candidates (in archive order), ``hist[d]`` = candidates at distance d,
    the running threshold ``t`` and ``c`` = candidates with distance <= t. A code is kept when it is
    closer than t, or while fewer than k are kept; a code *at* t arriving once k are kept loses the
    tie to earlier ones. Then t drops while the codes below it already number k. When the buffer
    is full, candidates beyond t (and surplus ties at t) are dropped; order is preserved, so a
    final counting sort by distance yields ties in archive order."""
    nq = qw.shape[0]
    n = words.shape[1]
    cap = max(cap, k + 1)  # a compacted buffer holds k codes: room for one more is required
    buf_i = np.empty((nq, cap), np.int64)
    buf_d = np.empty((nq, cap), np.int32)
    cnt = np.zeros(nq, np.int64)
    hist = np.zeros((nq, bits + 1), np.int64)
    thr = np.full(nq, bits, np.int64)
    cum = np.zeros(nq, np.int64)
    dist = np.empty(block, np.int32)
    for s in range(0, n, block):
        m = min(block, n - s)
        for q in range(nq):
            mn = _nb_block_distances(words, qw[q], s, m, dist)
            t = thr[q]
            c = cum[q]
            if c >= k and mn >= t:  # most blocks hold no code closer than t
                continue
            nb = cnt[q]
            for j0 in range(0, m, 64):
                j1 = min(j0 + 64, m)
                if c >= k:  # skip 64 codes at once when none is closer than t
                    mn = dist[j0]
                    for i in range(j0 + 1, j1):
                        mn = min(mn, dist[i])
                    if mn >= t:
                        continue
                for i in range(j0, j1):
                    d = dist[i]
                    if d < t or c < k:
                        if nb == cap:  # compact: keep codes below t and the first ties at t
                            need = k - (c - hist[q, t])
                            j = 0
                            for r in range(nb):
                                dr = buf_d[q, r]
                                if dr < t or (dr == t and need > 0):
                                    if dr == t:
                                        need -= 1
                                    buf_d[q, j] = dr
                                    buf_i[q, j] = buf_i[q, r]
                                    j += 1
                            nb = j
                            hist[q, t] = k - (c - hist[q, t])
                            c = k
                        buf_d[q, nb] = d
                        buf_i[q, nb] = s + i
                        nb += 1
                        hist[q, d] += 1
                        c += 1
                        while c - hist[q, t] >= k:
                            c -= hist[q, t]
                            t -= 1
            thr[q] = t
            cum[q] = c
            cnt[q] = nb
    out_i = np.empty((nq, k), np.int64)
    out_d = np.empty((nq, k), np.int32)
    pos = np.zeros(bits + 2, np.int64)
    for q in range(nq):  # counting sort of the candidates by distance, stable
        t = thr[q]
        pos[:] = 0
        for r in range(cnt[q]):
            d = buf_d[q, r]
            if d <= t:
                pos[d + 1] += 1
        for d in range(1, t + 2):
            pos[d] += pos[d - 1]
        for r in range(cnt[q]):
            d = buf_d[q, r]
            if d <= t:
                p = pos[d]
                if p < k:
                    out_i[q, p] = buf_i[q, r]
                    out_d[q, p] = d
                pos[d] = p + 1
    return out_i, out_d
