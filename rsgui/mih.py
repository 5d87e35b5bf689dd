"""Exact k-nearest neighbours in Hamming space by multi-index hashing (Norouzi, Punjani & Fleet).

The code's bits are split into ``m`` disjoint substrings; each substring has a table mapping its
value to the archive rows that hold it (a counting sort: ``offsets`` per value, ``ids`` in archive
order). Two codes at distance ``d`` differ by at most ``floor(d / m)`` bits in at least one
substring, so probing every table at substring radius 0, 1, 2, ... finds the near codes first.
After radius ``s`` has been probed in tables ``0..j``, every code not yet found is at least
``m * s + j + 1`` bits away: once ``k`` found codes lie within that bound, the top-k is certified
exact. Candidates are kept with their ties and sorted by (distance, archive position) at the end,
so the results equal :func:`rsgui.hamming.hamming_topk` (ties by archive order) exactly.

A code met again in a later table is recognised without a visited set: it was found before if one
of its substrings is closer than the radius, or as close in an earlier table. A query whose probing
would look at more than ``budget`` candidates (codes spread uniformly, where a scan is cheaper) is
reported back and answered by the linear scan, so the result is exact either way.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass

import numpy as np

# substring length (bits): about log2(N), within these bounds (a table has 2**length entries)
MIN_SUB_BITS = 8
MAX_SUB_BITS = 22
# candidates a query may look at, as a share of the archive, before the linear scan is used
BUDGET_SHARE = 0.01


def substring_bits(n: int, bits: int) -> list[int]:
    """Lengths of the substrings for ``n`` codes of ``bits`` bits: about ``log2(n)`` bits each
    (Norouzi et al.'s choice), split as evenly as possible."""
    length = int(np.clip(round(math.log2(max(n, 2))), MIN_SUB_BITS, MAX_SUB_BITS))
    m = max(1, -(-bits // length))
    base, extra = divmod(bits, m)
    return [base + 1 if j < extra else base for j in range(m)]


@dataclass
class MihTables:
    """Substring tables of one set of codes. ``starts``/``lens``: each substring's first bit and
    length in the uint64 word layout; ``offsets`` (m, 2**max_len + 1) and ``ids`` (m, N)."""

    starts: np.ndarray  # (m,) int64
    lens: np.ndarray  # (m,) int64
    offsets: np.ndarray  # (m, 2**max(lens) + 1) uint32 or int64
    ids: np.ndarray  # (m, N) uint32 or int64

    @property
    def m(self) -> int:
        return int(self.lens.shape[0])

    @property
    def n(self) -> int:
        return int(self.ids.shape[1])

    @classmethod
    def build(cls, rows: np.ndarray, bits: int, lens: list[int] | None = None) -> MihTables:
        """Tables for (N, W) uint64 code rows of ``bits`` bits (padding bits zero)."""
        rows = np.ascontiguousarray(rows, dtype=np.uint64)
        n = rows.shape[0]
        span = 8 * (-(-bits // 8))  # the packed bytes' bits; padding bits are zero everywhere
        lens = list(lens) if lens is not None else substring_bits(n, span)
        if sum(lens) != span or max(lens) > 32:
            raise ValueError(f"substring lengths {lens} do not split {span} bits (32 at most)")
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        lens_a = np.asarray(lens, np.int64)
        wide = n >= 2**32 - 1
        size = (1 << int(lens_a.max())) + 1
        offsets = np.zeros((len(lens), size), np.int64 if wide else np.uint32)
        ids = np.empty((len(lens), n), np.int64 if wide else np.uint32)
        build = _kernels()["build"]
        for j in range(len(lens)):
            build(rows, int(starts[j]), int(lens_a[j]), offsets[j], ids[j])
        return cls(starts, lens_a, offsets, ids)


def rows_of(packed: np.ndarray, bits: int) -> np.ndarray:
    """(N, nbytes) packed uint8 as (N, W) uint64 rows: a view when nbytes is a multiple of 8
    (memory-mapped codes stay mapped), else a zero-padded copy."""
    from rsgui.hamming import _clear_padding, to_words

    packed = np.asarray(packed)
    if packed.shape[1] % 8 == 0 and bits == 8 * packed.shape[1] and packed.flags.c_contiguous:
        return packed.view(np.uint64).reshape(packed.shape[0], packed.shape[1] // 8)
    return to_words(_clear_padding(np.ascontiguousarray(packed), bits))


def mih_topk(
    rows: np.ndarray,
    tables: MihTables,
    query_rows: np.ndarray,
    k: int,
    bits: int,
    budget: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-k of each (W,) uint64 query row among (N, W) ``rows``: ``(idx (Q, k) int64,
    dist (Q, k) int32, ok (Q,) bool)``, ties by archive position. ``ok`` is False for the queries
    that stopped at ``budget`` candidates (default :data:`BUDGET_SHARE` of N); their rows are
    undefined and must be answered by a scan."""
    n = rows.shape[0]
    k = min(int(k), n)
    nq = query_rows.shape[0]
    idx = np.zeros((nq, k), np.int64)
    dist = np.zeros((nq, k), np.int32)
    ok = np.ones(nq, np.bool_)
    if nq == 0 or k == 0:
        return idx, dist, ok
    if budget is None:
        budget = max(4096, int(BUDGET_SHARE * n))
    query = _kernels()["query"]
    qr = np.ascontiguousarray(query_rows, dtype=np.uint64)
    for q in range(nq):
        ok[q] = query(
            rows, qr[q], k, bits, tables.starts, tables.lens, tables.offsets, tables.ids,
            int(budget), idx[q], dist[q],
        )  # fmt: skip
    return idx, dist, ok


# -- compiled kernels ------------------------------------------------------------------------------

_state: dict = {}
_lock = threading.Lock()


def available() -> bool:
    """True when numba compiles the kernels here."""
    try:
        _kernels()
    except Exception:  # noqa: BLE001 - any failure means: no MIH, use the scan
        return False
    return True


def _kernels() -> dict:
    with _lock:
        if "kernels" in _state:
            return _state["kernels"]
        if "error" in _state:
            raise _state["error"]
        try:
            import numba
        except ImportError as exc:
            _state["error"] = ImportError(f"multi-index hashing needs numba ({exc})")
            raise _state["error"] from None
        from rsgui.hamming import _numba_kernel

        _numba_kernel()  # defines the popcount intrinsic used below

        def jit(fn):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    return numba.njit(cache=True, nogil=True, boundscheck=False)(fn)
                except Exception:  # noqa: BLE001 - nowhere to cache: compile each run
                    return numba.njit(cache=False, nogil=True, boundscheck=False)(fn)

        import rsgui.hamming as hm

        globals()["_popcount"] = hm._nb_popcount64
        globals()["_sub"] = jit(_sub_py)
        globals()["_distance"] = jit(_distance_py)
        kernels = {"build": jit(_build_py), "query": jit(_query_py)}
        _state["kernels"] = kernels
        return kernels


def _popcount(x):  # replaced by the LLVM ctpop intrinsic of rsgui.hamming when compiled
    return int(x).bit_count()


def _sub_py(row, start, length):
    """Bits ``start .. start + length`` (length <= 32) of a (W,) uint64 row as an integer."""
    w = start >> 6
    b = start & 63
    v = row[w] >> np.uint64(b)
    if b + length > 64:
        v |= row[w + 1] << np.uint64(64 - b)
    return np.int64(v & np.uint64((1 << length) - 1))


def _distance_py(a, b):
    d = 0
    for w in range(a.shape[0]):
        d += _popcount(a[w] ^ b[w])
    return d


_sub = _sub_py  # replaced by compiled versions when the kernels are built
_distance = _distance_py


def _build_py(rows, start, length, offsets, ids):
    """Counting sort of the rows by their substring: ``ids[offsets[v]:offsets[v+1]]`` are the
    rows whose substring is ``v``, in archive order."""
    n = rows.shape[0]
    size = 1 << length
    for i in range(offsets.shape[0]):
        offsets[i] = 0
    for i in range(n):
        offsets[_sub(rows[i], start, length) + 1] += 1
    for v in range(size):
        offsets[v + 1] += offsets[v]
    for v in range(size + 1, offsets.shape[0]):
        offsets[v] = offsets[size]
    fill = offsets[:size].copy()
    for i in range(n):
        v = _sub(rows[i], start, length)
        ids[fill[v]] = i
        fill[v] += 1


def _query_py(rows, q, k, bits, starts, lens, offsets, ids, budget, out_i, out_d):
    """One query; returns False when ``budget`` candidates were looked at before certifying."""
    m = lens.shape[0]
    n = rows.shape[0]
    qsub = np.empty(m, np.int64)
    for j in range(m):
        qsub[j] = _sub(q, starts[j], lens[j])
    cap = 4 * k + 1024
    buf_i = np.empty(cap, np.int64)
    buf_d = np.empty(cap, np.int64)
    hist = np.zeros(bits + 2, np.int64)
    nb = 0
    thr = bits  # every kept candidate is within thr; once k are kept, thr is the k-th distance
    below = 0  # kept candidates with distance <= thr
    looked = 0
    max_len = 0
    for j in range(m):
        max_len = max(max_len, lens[j])
    done = False
    for s in range(max_len + 1):
        for j in range(m):
            length = lens[j]
            if s <= length:
                # every mask of `length` bits with s bits set (Gosper's hack)
                mask = (1 << s) - 1
                limit = 1 << length
                while mask < limit:
                    v = qsub[j] ^ mask
                    for p in range(offsets[j, v], offsets[j, v + 1]):
                        x = ids[j, p]
                        looked += 1
                        row = rows[x]
                        seen = False
                        for jj in range(m):
                            if jj != j:
                                dj = _popcount(
                                    np.uint64(_sub(row, starts[jj], lens[jj]) ^ qsub[jj])
                                )
                                if dj < s or (dj == s and jj < j):
                                    seen = True
                                    break
                        if seen:
                            continue
                        d = _distance(row, q)
                        if d > thr:
                            continue
                        if nb == cap:  # keep the k best by (distance, position)
                            keys = buf_d[:nb] * n + buf_i[:nb]
                            keys.sort()
                            nb = k
                            for r in range(k):
                                buf_d[r] = keys[r] // n
                                buf_i[r] = keys[r] % n
                            hist[:] = 0
                            for r in range(k):
                                hist[buf_d[r]] += 1
                            thr = buf_d[k - 1]
                            below = k
                            if d > thr:
                                continue
                        buf_i[nb] = x
                        buf_d[nb] = d
                        nb += 1
                        hist[d] += 1
                        below += 1
                        while thr > 0 and below - hist[thr] >= k:
                            below -= hist[thr]
                            thr -= 1
                    if looked > budget:
                        return False
                    if mask == 0:
                        break
                    c = mask & -mask
                    r2 = mask + c
                    mask = (((r2 ^ mask) >> 2) // c) | r2
            # every code not yet found is at least m * s + j + 1 away
            if below >= k and thr <= m * s + j:
                done = True
                break
        if done:
            break
    keys = buf_d[:nb] * n + buf_i[:nb]
    keys.sort()
    t = 0
    for r in range(nb):
        if t == k:
            break
        if keys[r] // n <= thr:
            out_d[t] = keys[r] // n
            out_i[t] = keys[r] % n
            t += 1
    return True
