"""The one ranker: leave-one-out and query-vs-database rankings against brute force, ties in
database order, for binary (Hamming) and float (cosine) codes."""

from __future__ import annotations

import numpy as np
import pytest

from rsgui import ranking
from rsgui.cosine import normalise_rows


def _brute(codes: np.ndarray, binary: bool) -> np.ndarray:
    """Every code against the others by sorting all scores (itself last, then cut)."""
    if binary:
        b = codes > 0
        d = (b[:, None, :] != b[None]).sum(-1).astype(np.float64)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1, kind="stable")[:, :-1]
    u = normalise_rows(codes)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :-1]


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize(("n", "bits"), [(50, 16), (300, 64), (700, 130)])
@pytest.mark.parametrize("k", [None, 1, 5, "all", "more"])
def test_leave_one_out_matches_brute_force(binary, n, bits, k):
    rng = np.random.default_rng(n + bits)
    codes = rng.standard_normal((n, bits)).astype(np.float32)
    codes[5] = codes[7] = codes[3]  # exact ties: database order decides
    kk = {"all": n - 1, "more": n + 3}.get(k, k)
    out = ranking.leave_one_out(codes, binary, kk)
    want = _brute(codes, binary)
    width = n - 1 if kk is None else min(kk, n - 1)
    assert out.shape == (n, width)
    np.testing.assert_array_equal(out, want[:, :width])
    if width >= 2:  # codes 3, 5 and 7 are equal: 5 finds 3 then 7
        assert out[5, :2].tolist() == [3, 7]


@pytest.mark.parametrize("binary", [True, False])
def test_rank_with_and_without_exclusions(binary):
    rng = np.random.default_rng(1)
    db = rng.standard_normal((80, 32)).astype(np.float32)
    q = db[10:20]
    plain = ranking.rank(q, db, binary, k=4)
    assert plain.shape == (10, 4) and plain[:, 0].tolist() == list(range(10, 20))
    ex = np.array([10, -1, 12, -1, 14, -1, 16, -1, 18, -1])
    left = ranking.rank(q, db, binary, k=4, exclude=ex)
    for row, e in enumerate(ex):
        want = [i for i in ranking.rank(q[row], db, binary)[0] if i != e][:4]
        assert left[row].tolist() == want
    full = ranking.rank(q, db, binary, exclude=ex)
    assert full.shape == (10, 79)


def test_refusals():
    db = np.zeros((5, 8), np.float32)
    with pytest.raises(ValueError, match="one entry per query"):
        ranking.rank(db[:2], db, True, exclude=[0])
    with pytest.raises(ValueError, match="beyond"):
        ranking.rank(db[:1], db, True, exclude=[5])
    with pytest.raises(ValueError, match="dimensions"):
        ranking.rank(db[:1, :4], db, False)
    with pytest.raises(ValueError, match="at least 2"):
        ranking.leave_one_out(db[:1], True)
