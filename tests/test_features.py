"""Colour features on hand-made tiles: right bins, right patches, right shapes."""

from __future__ import annotations

import numpy as np
import pytest

from rsgui.features import (
    band_stretch,
    bin_indices,
    extract,
    feature_dim,
    global_histogram,
    local_histogram,
    raw_colour,
)


@pytest.mark.parametrize(
    ("value", "bins", "expected_bin"),
    [(0.0, 16, 0), (0.05, 16, 0), (0.0625, 16, 1), (0.5, 16, 8), (0.99, 16, 15), (1.0, 16, 15),
     (1.7, 16, 15), (-0.3, 16, 0), (0.3, 4, 1), (0.26, 8, 2)],
)  # fmt: skip
def test_constant_tile_lands_in_its_bin(value, bins, expected_bin):
    tiles = np.full((2, 3, 8, 8), value, dtype=np.float32)
    h = global_histogram(tiles, bins).reshape(2, 3, bins)
    expected = np.zeros(bins, np.float32)
    expected[expected_bin] = 1.0
    np.testing.assert_array_equal(h, np.broadcast_to(expected, h.shape))


def test_global_histogram_counts_fractions_per_band():
    tile = np.zeros((1, 2, 4, 4), np.float32)
    tile[0, 0, :2] = 0.9  # band 0: half bright
    tile[0, 1, :1] = 0.6  # band 1: a quarter at 0.6
    h = global_histogram(tile, 4).reshape(2, 4)
    np.testing.assert_allclose(h[0], [0.5, 0, 0, 0.5])
    np.testing.assert_allclose(h[1], [0.75, 0, 0.25, 0])
    np.testing.assert_allclose(h.sum(axis=1), 1.0)


def test_local_histogram_of_half_dark_half_bright_tile_differs_by_patch():
    tile = np.zeros((1, 1, 64, 64), np.float32)
    tile[..., 32:] = 0.95  # right half bright
    h = local_histogram(tile, bins=4, patch=16).reshape(4, 4, 4)  # grid rows x cols x bins
    assert h.shape == (4, 4, 4)
    np.testing.assert_array_equal(h[:, :2, 0], 1.0)  # left columns: all dark
    np.testing.assert_array_equal(h[:, 2:, 3], 1.0)  # right columns: all bright
    # the global histogram cannot tell left from right; the local one can
    flipped = tile[..., ::-1].copy()
    np.testing.assert_array_equal(global_histogram(tile, 4), global_histogram(flipped, 4))
    assert not np.array_equal(local_histogram(tile, 4, 16), local_histogram(flipped, 4, 16))


def test_local_histogram_layout_is_band_then_patch_then_bin():
    tile = np.zeros((1, 2, 4, 4), np.float32)
    tile[0, 1, :2, :2] = 0.99  # band 1, top-left patch, last bin
    h = local_histogram(tile, bins=2, grid=2)
    assert h.shape == (1, 2 * 4 * 2)
    assert h[0, (1 * 4 + 0) * 2 + 1] == 1.0
    assert h[0, (0 * 4 + 0) * 2 + 1] == 0.0


@pytest.mark.parametrize("size", [(64, 64), (60, 60), (33, 47)])
def test_local_histogram_uneven_sizes_sum_to_one_per_patch(size):
    rng = np.random.default_rng(0)
    tiles = rng.random((3, 2, *size), dtype=np.float32)
    h = local_histogram(tiles, bins=5, patch=16)
    grid = min(size) // 16
    assert h.shape == (3, feature_dim("local", 2, *size, 5, 16))
    np.testing.assert_allclose(h.reshape(3, 2, grid * grid, 5).sum(-1), 1.0, rtol=1e-6)


def test_histograms_are_vectorised_over_tiles_consistently():
    rng = np.random.default_rng(1)
    tiles = rng.random((130, 3, 16, 16), dtype=np.float32)  # more than one internal chunk
    whole = local_histogram(tiles, 8, 8)
    one_by_one = np.concatenate([local_histogram(t[None], 8, 8) for t in tiles])
    np.testing.assert_array_equal(whole, one_by_one)


def test_raw_colour_flattens():
    tiles = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    f = raw_colour(tiles)
    assert f.shape == (2, 48)
    np.testing.assert_array_equal(f[1], tiles[1].ravel())


def test_band_stretch_and_limits_in_binning_agree():
    rng = np.random.default_rng(2)
    tiles = rng.random((4, 3, 8, 8), dtype=np.float32) * 0.4
    low, high = np.array([0.0, 0.1, 0.2]), np.array([0.4, 0.3, 0.25])
    stretched = band_stretch(tiles, low, high)
    assert stretched.min() >= 0 and stretched.max() <= 1
    same = bin_indices(tiles, 8, low, high) == bin_indices(stretched, 8)
    assert same.mean() > 0.99  # identical but for float rounding exactly at a bin edge
    direct = global_histogram(tiles, 8, low, high)
    via = global_histogram(stretched, 8)
    assert np.abs(direct - via).max() <= 2 / 64  # at most a pixel or two moves at a bin edge


@pytest.mark.parametrize("kind", ["raw", "global", "local"])
def test_extract_dimensions_and_power(kind):
    rng = np.random.default_rng(3)
    tiles = rng.random((5, 4, 32, 32), dtype=np.float32)
    f1 = extract(tiles, kind, bins=8, patch=16, power=1.0)
    f2 = extract(tiles, kind, bins=8, patch=16, power=0.5)
    assert f1.shape == (5, feature_dim(kind, 4, 32, 32, 8, 16))
    assert f1.dtype == np.float32
    if kind == "raw":
        np.testing.assert_array_equal(f1, f2)
    else:
        np.testing.assert_allclose(f2, np.sqrt(f1), rtol=1e-6)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="N, C, H, W"):
        global_histogram(np.zeros((3, 8, 8)), 4)
    with pytest.raises(ValueError, match="bins"):
        global_histogram(np.zeros((1, 1, 8, 8)), 0)
    with pytest.raises(ValueError, match="unknown feature"):
        extract(np.zeros((1, 1, 8, 8)), "colour")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="band limits"):
        global_histogram(np.zeros((1, 2, 8, 8)), 4, low=[0.0], high=[1.0])
