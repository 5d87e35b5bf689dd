"""Two-stage kNN similarity matrix on a hand-worked case, packed storage and its scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.ssm import (
    SSM,
    SSMConfig,
    accuracy_iou,
    build_ssm,
    cache_key,
    fuse,
    hamming_knn_bits,
    knn_bits,
    normalise_part,
    resolve_k,
    scaled_k,
)

torch.set_num_threads(1)

# Six unit vectors, two clusters: angles 0, 10, 25 and 90, 105, 115 degrees (no ties in cosine).
ANGLES = np.deg2rad([0, 10, 25, 90, 105, 115])
POINTS = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1).astype(np.float32)


def sets(packed: np.ndarray, n: int) -> list[set[int]]:
    rows = np.unpackbits(packed, axis=1, count=n).astype(bool)
    return [set(np.flatnonzero(r).tolist()) for r in rows]


def test_first_knn_by_hand():
    # K1 = 2: each point and its nearest neighbour
    assert sets(knn_bits(POINTS, 2), 6) == [{0, 1}, {0, 1}, {1, 2}, {3, 4}, {4, 5}, {4, 5}]


def test_second_knn_by_hand():
    s1 = knn_bits(POINTS, 2)
    # Hamming distance between S1 rows = 4 - 2 * shared; ties go to the lower index
    assert sets(hamming_knn_bits(s1, 6, 2), 6) == [{0, 1}, {0, 1}, {0, 2}, {3, 4}, {4, 5}, {4, 5}]


@pytest.mark.parametrize("block", [1, 4, 1024])
def test_final_ssm_by_hand(block):
    ssm = build_ssm(POINTS, k1=2, k2=2, block=block)
    expected = [{0, 1}, {0, 1}, {2}, {3, 4}, {4, 5}, {4, 5}]  # S1 AND S2
    assert sets(ssm.packed, 6) == expected
    dense = ssm.dense()
    assert dense.dtype == np.int8 and set(np.unique(dense)) <= {-1, 1}
    assert ssm.block([3, 4]).tolist() == [[1, 1], [-1, 1]]


def test_accuracy_iou_hand_case():
    ssm = build_ssm(POINTS, 2, 2)
    acc, iou = accuracy_iou(ssm, np.array([0, 0, 0, 1, 1, 1]))
    # 11 similar entries predicted, all within a class; 18 true similar entries
    assert iou == pytest.approx(11 / 18)
    assert acc == pytest.approx((36 - 7) / 36)


def test_perfect_features_give_perfect_ssm():
    labels = np.repeat(np.arange(3), 5)
    feats = np.eye(3, dtype=np.float32)[labels] + 0.01 * np.random.default_rng(0).random((15, 3))
    ssm = build_ssm(feats, 5, 5)
    assert accuracy_iou(ssm, labels) == (1.0, 1.0)


def test_save_load_roundtrip(tmp_path):
    ssm = build_ssm(POINTS, 2, 2)
    path = ssm.save(tmp_path / "m.ssm.npz", key="abc")
    assert SSM.load(path, "abc").packed.tolist() == ssm.packed.tolist()
    assert SSM.load(path, "other") is None  # other tiles or settings: rebuild
    assert SSM.load(tmp_path / "missing.npz") is None
    assert [p.name for p in tmp_path.iterdir()] == ["m.ssm.npz"]  # no temp files left


def test_scaled_k_and_limits():
    assert (scaled_k(5000, 500), scaled_k(5000, 300)) == (500, 300)
    assert (scaled_k(311, 500), scaled_k(311, 300)) == (31, 19)
    assert resolve_k(10, SSMConfig(k1=3, k2=2)) == (3, 2)
    with pytest.raises(ValueError, match="K1"):
        build_ssm(POINTS, 7, 2)


def test_fuse_normalises_parts():
    a = np.full((4, 3), 100.0, np.float32) + np.arange(4)[:, None]
    b = np.random.default_rng(1).random((4, 5)).astype(np.float32)
    f = fuse(a, b, eta=6.0)
    assert f.shape == (4, 8)
    assert np.linalg.norm(f[:, :3], axis=1).mean() == pytest.approx(1.0, rel=1e-5)
    assert np.linalg.norm(f[:, 3:], axis=1).mean() == pytest.approx(6.0, rel=1e-5)
    centred = normalise_part(a, center=True)
    assert np.abs(centred.mean(axis=0)).max() < 1e-6


def test_cache_key_changes_with_settings():
    k = cache_key(["a.tif", "b.tif"], SSMConfig(), 1, 1)
    assert k != cache_key(["a.tif", "b.tif"], SSMConfig(eta=2.0), 1, 1)
    assert k != cache_key(["b.tif", "a.tif"], SSMConfig(), 1, 1)
