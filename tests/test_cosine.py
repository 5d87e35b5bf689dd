"""Exact cosine top-k over float features: brute force agreement, ties in archive order."""

from __future__ import annotations

import numpy as np

from rsgui.cosine import cosine_topk


def test_cosine_topk_matches_brute_force_and_ties():
    rng = np.random.default_rng(3)
    db = rng.standard_normal((200, 16)).astype(np.float32)
    db[50] = db[10] * 3.0  # same direction as row 10: a tie, row 10 must come first
    q = np.vstack([db[10], rng.standard_normal((4, 16))]).astype(np.float32)
    idx, sim = cosine_topk(db, q, 7)
    unit = db / np.linalg.norm(db, axis=1, keepdims=True)
    s = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ unit.T
    ref = np.argsort(-s, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(idx[1:], ref[1:])
    assert idx[0, :2].tolist() == [10, 50]
    np.testing.assert_allclose(sim, np.take_along_axis(s, idx, 1), rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(sim, axis=1) <= 0)


def test_cosine_k_clamps_and_zero_vectors():
    db = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]], np.float32)
    idx, sim = cosine_topk(db, np.array([1.0, 1.0]), 10)
    # similarities: 1/sqrt2, 0 (zero vector), 1/sqrt2 -> tie of rows 0 and 2 in archive order
    assert idx.tolist() == [[0, 2, 1]]
    np.testing.assert_allclose(sim, [[2**-0.5, 2**-0.5, 0.0]], rtol=1e-6)
