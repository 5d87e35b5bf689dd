"""Exact Hamming and cosine top-k against brute force, including ties and the slow paths."""

import numpy as np
import pytest

import rsgui.hamming as hamming
from rsgui.codes import pack_codes
from rsgui.hamming import PackedCodes, hamming_distances, hamming_topk


def random_codes(rng, n, bits):
    return pack_codes(rng.integers(0, 2, (n, bits)).astype(bool))


def brute_force(db, q, bits, k):
    a = np.unpackbits(q, axis=1, count=bits).astype(np.int64)
    b = np.unpackbits(db, axis=1, count=bits).astype(np.int64)
    dist = (a[:, None, :] != b[None, :, :]).sum(-1)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]  # stable: ties in archive order
    return idx, np.take_along_axis(dist, idx, 1), dist


def have_numba():
    return hamming.numba_available()


BACKENDS = [
    "numpy",
    pytest.param(
        "numba", marks=pytest.mark.skipif(not have_numba(), reason="numba is not installed")
    ),
]


@pytest.fixture
def small_blocks(monkeypatch):
    """Force several scan tiles, a strided threshold sample and partial tiles on small archives."""
    monkeypatch.setattr(hamming, "SAMPLE_ROWS", 16)
    monkeypatch.setattr(hamming, "SINGLE_BLOCK", 37)
    monkeypatch.setattr(hamming, "BATCH_BLOCK", 23)
    monkeypatch.setattr(hamming, "QUERY_BLOCK", 3)
    monkeypatch.setattr(hamming, "NUMBA_BLOCK", 50)  # not a multiple of the 64-code skip chunk


@pytest.mark.parametrize("bits", [8, 16, 48, 64, 100, 128, 256])
@pytest.mark.parametrize("n_queries", [1, 7])
@pytest.mark.parametrize("k", [1, 10, 60, 400])
@pytest.mark.parametrize("blocks", ["default", "small"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_topk_matches_brute_force(bits, n_queries, k, blocks, backend, request):
    if blocks == "small":
        request.getfixturevalue("small_blocks")
    rng = np.random.default_rng(bits * 1000 + n_queries * 10 + k)
    # few bits with many codes -> many ties; k=400 > n tests clamping
    n = 300
    db = random_codes(rng, n, bits)
    q = random_codes(rng, n_queries, bits)
    idx, dist = hamming_topk(PackedCodes(db, bits), q, k, backend=backend)
    ref_idx, ref_dist, _ = brute_force(db, q, bits, k)
    assert idx.shape == dist.shape == (n_queries, min(k, n))
    assert idx.dtype == np.int64 and dist.dtype == np.int32
    np.testing.assert_array_equal(dist, ref_dist)
    np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_follow_archive_order(backend):
    # rows 1, 3 and 4 all equal the query; rows 0 and 2 are one bit away
    db = np.array([[0b0001], [0], [0b1000], [0], [0]], dtype=np.uint8) << 4
    q = np.zeros((1, 1), np.uint8)
    idx, dist = hamming_topk(db, q, 4, backend=backend)
    np.testing.assert_array_equal(idx, [[1, 3, 4, 0]])
    np.testing.assert_array_equal(dist, [[0, 0, 0, 1]])
    # k=1 of 40 rows (the scanning path, not the full sort): the first exact match wins
    db = np.repeat(db, 8, axis=0)
    assert hamming_topk(db, q, 1, backend=backend)[0].tolist() == [[8]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_identical_codes_keep_archive_order(small_blocks, backend):
    db = np.full((200, 8), 0xAB, np.uint8)
    idx, dist = hamming_topk(db, db[:2], 30, backend=backend)
    np.testing.assert_array_equal(idx, np.tile(np.arange(30), (2, 1)))
    assert not dist.any()


def test_low_threshold_estimate_falls_back_to_exact(monkeypatch):
    rng = np.random.default_rng(5)
    db = random_codes(rng, 500, 64)
    q = random_codes(rng, 4, 64)
    monkeypatch.setattr(hamming, "_estimate_thresholds", lambda db, qw, k: np.zeros(len(qw), int))
    idx, dist = hamming_topk(db, q, 20)
    ref_idx, ref_dist, _ = brute_force(db, q, 64, 20)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)


@pytest.mark.skipif(not have_numba(), reason="numba is not installed")
@pytest.mark.parametrize("bits", [8, 64, 128])
def test_numba_kernel_compacts_a_full_buffer(bits):
    # a tiny candidate buffer forces the compaction path many times; few bits give many ties
    rng = np.random.default_rng(bits)
    db = random_codes(rng, 2000, bits)
    q = random_codes(rng, 5, bits)
    packed = PackedCodes(db, bits)
    kernel = hamming._numba_kernel()
    for k in (1, 5, 40):
        idx, dist = kernel(packed.words, hamming.to_words(q), k, bits, 128, k + 1)
        ref_idx, ref_dist, _ = brute_force(db, q, bits, k)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(dist, ref_dist)


def test_backend_choice(monkeypatch):
    with pytest.raises(ValueError, match="unknown Hamming backend"):
        hamming_topk(np.zeros((3, 1), np.uint8), np.zeros((1, 1), np.uint8), 1, backend="gpu")
    monkeypatch.setenv("RSGUI_HAMMING_BACKEND", "numpy")
    assert hamming._choose_backend(None, 10**7) == "numpy"
    monkeypatch.setenv("RSGUI_HAMMING_BACKEND", "auto")
    assert hamming._choose_backend(None, 10) == "numpy"  # small archives never compile anything


def test_queries_are_processed_in_chunks(monkeypatch):
    monkeypatch.setattr(hamming, "CHUNK_ENTRIES", 1)  # one query per chunk
    rng = np.random.default_rng(9)
    db = random_codes(rng, 100, 32)
    q = random_codes(rng, 6, 32)
    ref_idx, ref_dist, _ = brute_force(db, q, 32, 5)
    idx, dist = hamming_topk(db, q, 5)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)


def test_single_query_row_and_distances_matrix():
    rng = np.random.default_rng(2)
    db = random_codes(rng, 50, 100)
    idx, dist = hamming_topk(db, db[7], 1)  # a 1-D query is one query
    assert idx.tolist() == [[7]] and dist.tolist() == [[0]]
    _, _, full = brute_force(db, db[:3], 100, 1)
    np.testing.assert_array_equal(hamming_distances(db, db[:3]), full)


def test_refuses_mismatched_query_width_and_k():
    db = np.zeros((5, 8), np.uint8)
    with pytest.raises(ValueError, match="8 bytes"):
        hamming_topk(db, np.zeros((1, 16), np.uint8), 3)
    with pytest.raises(ValueError, match="k must be"):
        hamming_topk(db, np.zeros((1, 8), np.uint8), -1)
    assert hamming_topk(db, np.zeros((2, 8), np.uint8), 0)[0].shape == (2, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stray_padding_bits_are_ignored(backend):
    # 100-bit codes use 13 bytes; the last 4 bits of byte 13 are padding and must never count
    rng = np.random.default_rng(4)
    db = random_codes(rng, 300, 100)
    q = random_codes(rng, 3, 100)
    ref_idx, ref_dist, _ = brute_force(db, q, 100, 10)
    dirty_db, dirty_q = db.copy(), q.copy()
    dirty_db[:, -1] |= 0x0F
    dirty_q[:, -1] |= 0x05
    idx, dist = hamming_topk(PackedCodes(dirty_db, 100), dirty_q, 10, backend=backend)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(dist, ref_dist)
