"""Training-free spectral features of tiles (the colour features of the method's Table 5.1).

All functions take normalised tiles ``(N, C, H, W)`` float32 (values in [0, 1] after the
archive's normalisation) and return ``(N, D)`` float32 feature vectors. They are vectorised
over tiles and bands (one ``bincount`` per call, no Python loop over tiles), so a 27,000-tile
archive is processed in batches at the speed of reading it. The spectral hashing method and the
unsupervised similarity matrix both build on these.

Masked pixels (NaN, infinite or nodata in the file; :class:`rsgui.tiles.TileBatch` ``valid``)
are left out of the histograms: each histogram holds fractions of the valid pixels only, so a
tile with a nodata border matches tiles of its class, not other bordered tiles. The raw colour
feature sees the filled values (the tile's band means) instead.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

FeatureKind = Literal["raw", "global", "local"]

# Tiles per internal chunk: bounds the temporary bin-index arrays to a few tens of megabytes.
_CHUNK = 64


def raw_colour(pixels: np.ndarray) -> np.ndarray:
    """The tile itself, flattened: ``D = C * H * W``."""
    pixels = _check(pixels)
    return pixels.reshape(len(pixels), -1).astype(np.float32, copy=False)


def bin_indices(pixels: np.ndarray, bins: int, low=None, high=None) -> np.ndarray:
    """Bin of every value for ``bins`` equal intervals over [0, 1] (uint8, same shape); values
    outside are clamped to the first or last bin (1.0 lands in the last). With per-band ``low``
    and ``high`` the intervals split ``[low, high]`` instead (see :func:`band_stretch`)."""
    if bins < 1 or bins > 255:
        raise ValueError(f"bins must be within 1..255, got {bins}")
    pixels = np.asarray(pixels, dtype=np.float32)
    if low is None:
        scaled = pixels * np.float32(bins)
    else:
        low, scale = _limits(low, high, pixels.shape[1])
        scaled = pixels - low
        scaled *= scale * np.float32(bins)
    # fmax/fmin send NaN to bin 0 and clamp; truncation of the non-negative rest is floor
    np.fmax(scaled, 0.0, out=scaled)
    np.fmin(scaled, np.float32(bins - 1), out=scaled)
    return scaled.astype(np.uint8)


def global_histogram(
    pixels: np.ndarray, bins: int = 16, low=None, high=None, valid=None
) -> np.ndarray:
    """Per band, the fraction of pixels in each of ``bins`` intervals over [0, 1] (or over the
    band's ``[low, high]``): ``D = C * bins``, each band's histogram sums to 1. ``valid``:
    (N, H, W) bool, pixels to count (None: all)."""
    return local_histogram(pixels, bins=bins, grid=1, low=low, high=high, valid=valid)


def local_histogram(
    pixels: np.ndarray,
    bins: int = 8,
    patch: int = 16,
    grid: int | None = None,
    low=None,
    high=None,
    valid=None,
) -> np.ndarray:
    """Histograms per band per patch, concatenated: ``D = C * n_patches * bins``.

    The tile is cut into a ``grid x grid`` layout of patches (``grid`` defaults to
    ``H // patch``, e.g. 4 x 4 patches of 16 x 16 pixels for a 64 x 64 tile). Sizes that do not
    divide evenly get patches differing by one pixel. Each patch histogram holds fractions (sums
    to 1), so patches of different sizes weigh the same. Layout: band-major, then patch
    (row-major), then bin. ``low``/``high``: per-band limits as in :func:`bin_indices`.
    ``valid``: (N, H, W) bool; only those pixels are counted, and each patch's fractions are of
    its valid pixels (a patch without any is all zeros).
    """
    pixels = _check(pixels)
    n, c, h, w = pixels.shape
    if grid is None:
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        grid = max(1, min(h, w) // patch)
    if grid < 1 or grid > min(h, w):
        raise ValueError(f"patch grid {grid} does not fit a {h}x{w} tile")
    n_patches = grid * grid
    # patch number of every pixel, (H, W): row band * grid + column band
    rows = (np.arange(h) * grid) // h
    cols = (np.arange(w) * grid) // w
    patch_of_pixel = (rows[:, None] * grid + cols[None, :]).astype(np.int64)
    counts = np.bincount(patch_of_pixel.ravel(), minlength=n_patches).astype(np.float32)
    per_tile = c * n_patches * bins
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (n, h, w):
            raise ValueError(f"valid mask {valid.shape} does not fit tiles {pixels.shape}")
        if valid.all():
            valid = None
        else:
            cells = patch_of_pixel[None] + (np.arange(n) * n_patches)[:, None, None]
            per_patch = np.bincount(cells[valid], minlength=n * n_patches).astype(np.float32)
            counts = np.maximum(per_patch.reshape(n, n_patches), 1.0)
    out = np.empty((n, per_tile), dtype=np.float32)
    # offset of (band, patch) cells inside one tile's feature vector, (C, H, W)
    cell = (np.arange(c)[:, None, None] * n_patches + patch_of_pixel[None]) * bins
    for start in range(0, n, _CHUNK):
        chunk = pixels[start : start + _CHUNK]
        m = len(chunk)
        flat = bin_indices(chunk, bins, low, high) + cell[None]  # (m, C, H, W) int64
        flat += (np.arange(m, dtype=np.int64) * per_tile)[:, None, None, None]
        weights = None
        if valid is not None:
            weights = np.broadcast_to(valid[start : start + m, None], chunk.shape).ravel()
        hist = np.bincount(flat.ravel(), weights, minlength=m * per_tile).astype(np.float32)
        out[start : start + m] = hist.reshape(m, per_tile)
    if valid is None:
        out = out.reshape(n, c, n_patches, bins) / counts[None, None, :, None]
    else:
        out = out.reshape(n, c, n_patches, bins) / counts[:, None, :, None]
    return out.reshape(n, per_tile)


def extract(
    pixels: np.ndarray,
    kind: FeatureKind = "local",
    bins: int = 8,
    patch: int = 16,
    power: float = 1.0,
    low=None,
    high=None,
    valid=None,
) -> np.ndarray:
    """One of the three features by name; ``power`` < 1 compresses histogram fractions
    (0.5 is the Hellinger / square-root map, which lets rare but telling bins count).
    ``low``/``high``: per-band limits, see :func:`band_stretch`. ``valid``: (N, H, W) bool
    mask of the pixels histograms count (None: all)."""
    if kind == "raw":
        feats = raw_colour(pixels if low is None else band_stretch(pixels, low, high))
    elif kind == "global":
        feats = global_histogram(pixels, bins, low, high, valid=valid)
    elif kind == "local":
        feats = local_histogram(pixels, bins, patch, low=low, high=high, valid=valid)
    else:
        raise ValueError(f"unknown feature {kind!r}; choose raw, global or local")
    if power != 1.0 and kind != "raw":
        feats = np.power(feats, power, dtype=np.float32)
    return feats


def feature_dim(kind: FeatureKind, bands: int, height: int, width: int, bins: int, patch: int):
    """Length of the feature vector, without computing it."""
    if kind == "raw":
        return bands * height * width
    if kind == "global":
        return bands * bins
    grid = max(1, min(height, width) // patch)
    return bands * grid * grid * bins


def band_stretch(pixels: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map each band's ``[low, high]`` linearly onto [0, 1] (clipped), before binning.

    Equal bins over the raw [0, 1] range waste most bins: visible bands of a 12-bit archive
    rarely exceed a quarter of it. Stretching each band by limits fitted on the archive (not per
    class) lets every bin tell tiles apart."""
    pixels = _check(pixels)
    low, scale = _limits(low, high, pixels.shape[1])
    out = np.asarray(pixels, dtype=np.float32) - low
    out *= scale
    return np.clip(out, 0.0, 1.0, out=out)


def _limits(low, high, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band offset and scale, shaped to broadcast over (N, C, H, W)."""
    low = np.asarray(low, dtype=np.float32).reshape(1, -1, 1, 1)
    high = np.asarray(high, dtype=np.float32).reshape(1, -1, 1, 1)
    if low.shape[1] != n_bands or high.shape[1] != n_bands:
        raise ValueError(f"band limits for {low.shape[1]} bands, the tiles have {n_bands}")
    return low, (1.0 / np.maximum(high - low, 1e-6)).astype(np.float32)


def _check(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim != 4:
        raise ValueError(f"expected tiles shaped (N, C, H, W), got {pixels.shape}")
    return pixels
