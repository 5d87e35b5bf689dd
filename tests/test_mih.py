"""Multi-index hashing returns exactly the linear scan's top-k, ties by archive order."""

from __future__ import annotations

import numpy as np
import pytest

from rsgui import mih
from rsgui.hamming import _clear_padding, hamming_topk

pytestmark = pytest.mark.skipif(not mih.available(), reason="numba is not installed")


def _codes(kind: str, n: int, bits: int, rng) -> np.ndarray:
    nb = (bits + 7) // 8
    if kind == "random":
        packed = rng.integers(0, 256, (n, nb), dtype=np.uint8)
    elif kind == "all-equal":
        packed = np.full((n, nb), 0xA5, np.uint8)
    elif kind == "two-values":  # every distance is one of two values: ties everywhere
        packed = np.where(rng.random((n, 1)) < 0.5, 0, 255).astype(np.uint8) * np.ones(nb, np.uint8)
    else:  # clustered: a few centres, a few bit flips
        centres = rng.integers(0, 256, (5, nb), dtype=np.uint8)
        b = np.unpackbits(centres[rng.integers(0, 5, n)], axis=1)
        packed = np.packbits(b ^ (rng.random(b.shape) < 0.04), axis=1)
    return _clear_padding(packed, bits)


@pytest.mark.parametrize("bits", [8, 20, 64, 128])
@pytest.mark.parametrize("kind", ["random", "clustered", "all-equal", "two-values"])
def test_mih_equals_the_linear_scan(bits, kind):
    rng = np.random.default_rng(bits)
    n = 1500
    packed = _codes(kind, n, bits, rng)
    rows = mih.rows_of(packed, bits)
    tables = mih.MihTables.build(rows, bits)
    queries = np.concatenate([packed[rng.integers(0, n, 6)], _codes("random", 3, bits, rng)])
    for k in (1, 7, 100, n, n + 3):
        want_i, want_d = hamming_topk(packed, queries, k, backend="numpy")
        i, d, ok = mih.mih_topk(rows, tables, mih.rows_of(queries, bits), k, bits, budget=10**9)
        assert ok.all()
        np.testing.assert_array_equal(d, want_d)
        np.testing.assert_array_equal(i, want_i)


def test_a_query_over_budget_is_reported_not_answered_wrongly():
    rng = np.random.default_rng(3)
    packed = _codes("random", 4000, 64, rng)
    rows = mih.rows_of(packed, 64)
    tables = mih.MihTables.build(rows, 64)
    _, _, ok = mih.mih_topk(rows, tables, rows[:4], 50, 64, budget=10)
    assert not ok.any()


@pytest.mark.parametrize("n,bits", [(10, 64), (10**6, 64), (10**8, 128), (1000, 20)])
def test_substrings_split_every_bit(n, bits):
    lens = mih.substring_bits(n, bits)
    assert sum(lens) == bits and max(lens) - min(lens) <= 1 and max(lens) <= mih.MAX_SUB_BITS


def test_tables_list_every_row_once_in_archive_order():
    rng = np.random.default_rng(0)
    rows = mih.rows_of(_codes("random", 777, 64, rng), 64)
    t = mih.MihTables.build(rows, 64, lens=[16, 16, 16, 16])
    for j in range(t.m):
        assert sorted(t.ids[j].tolist()) == list(range(777))
        for v in rng.integers(0, 1 << 16, 50).tolist():
            bucket = t.ids[j, t.offsets[j, v] : t.offsets[j, v + 1]]
            assert np.all(np.diff(bucket.astype(np.int64)) > 0)
            got = (rows[bucket, 0] >> np.uint64(16 * j)) & np.uint64(0xFFFF)
            assert np.all(got == v)
