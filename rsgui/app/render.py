"""Turn tiles into pictures: band composites, single bands with a colour map, NDVI/NDWI.

Qt-free and numpy-only (matplotlib is used lazily for colour maps), so it runs in worker threads and
in tests. Input is one tile's file values ``(C, H, W)`` with its band names; bands are looked up by
name, never by position. Stretches (per band, per tile):

- ``cumulative``: clip at the ``low_pct``/``high_pct`` percentiles (2-98 % by default, as QGIS);
- ``minmax``: the band's minimum and maximum;
- ``stddev``: mean ± 2 standard deviations;
- ``fixed``: ``fixed_range`` in file values.

The statistics come from the whole archive (a pixel sample, ``Composite.scope == "archive"``,
the default: tiles stay comparable) or from the tile itself (``"tile"``). NDVI/NDWI are always
shown on their absolute -1..1 scale so that a colour means the same value in every tile.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rsgui.app.models import Composite, ReferenceSample
from rsgui.bands import COMPOSITES, INDICES, band_indices
from rsgui.errors import MissingBandsError

COLORMAPS: tuple[str, ...] = ("gray", "viridis", "magma", "inferno", "cividis", "terrain", "RdYlGn")
INDEX_COLORMAPS: dict[str, str] = {"NDVI": "RdYlGn", "NDWI": "RdBu"}


def required_bands(composite: Composite) -> tuple[str, ...]:
    """Band names a composite reads."""
    if composite.mode == "rgb":
        return tuple(composite.rgb)
    if composite.mode == "single":
        return (composite.band,)
    return tuple(INDICES[composite.index])


def missing_bands(composite: Composite, available: tuple[str, ...]) -> list[str]:
    return [b for b in required_bands(composite) if b not in available]


def preset_available(name: str, available: tuple[str, ...]) -> bool:
    """Whether a named composite preset (or index) can be shown with these bands."""
    bands = COMPOSITES.get(name) or INDICES.get(name) or ()
    return bool(bands) and all(b in available for b in bands)


def fallback_composite(composite: Composite, available: tuple[str, ...]) -> Composite:
    """The composite itself when possible, else something that works with what the file has
    (true colour, then the first band in grey): bands the archive lacks are never an error."""
    if not missing_bands(composite, available):
        return composite
    if all(b in available for b in COMPOSITES["True colour"]):
        return composite.with_(mode="rgb", rgb=COMPOSITES["True colour"], preset="True colour")
    if len(available) >= 3 and composite.mode == "rgb":
        return composite.with_(rgb=tuple(available[:3]), preset=None)
    if available:
        return composite.with_(mode="single", band=available[0], colormap="gray", preset=None)
    return composite


def stretch_limits(
    band: np.ndarray,
    method: str = "cumulative",
    low_pct: float = 2.0,
    high_pct: float = 98.0,
    fixed_range: tuple[float, float] = (0.0, 3000.0),
) -> tuple[float, float]:
    """Display range ``(lo, hi)`` of one band under a stretch (NaNs ignored)."""
    values = np.asarray(band, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if method == "fixed":
        return float(fixed_range[0]), float(fixed_range[1])
    if finite.size == 0:
        return 0.0, 1.0
    if method == "minmax":
        return float(finite.min()), float(finite.max())
    if method == "stddev":
        mean, std = float(finite.mean()), float(finite.std())
        return mean - 2.0 * std, mean + 2.0 * std
    if method == "cumulative":
        lo, hi = np.percentile(finite, [low_pct, high_pct])
        return float(lo), float(hi)
    raise ValueError(f"unknown stretch {method!r}")


def apply_stretch(band: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map ``lo..hi`` -> 0..1, clipped. A flat band (hi == lo) maps to 0."""
    band = np.asarray(band, dtype=np.float32)
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        return np.zeros(band.shape, np.float32)
    out = (band - np.float32(lo)) / np.float32(span)
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


def band_limits(
    band: np.ndarray,
    composite: Composite,
    name: str | None = None,
    reference: ReferenceSample | None = None,
) -> tuple[float, float]:
    """Display range of one band: from the archive's sample when the composite's scope is
    ``archive`` and the sample has the band, else from the band itself."""
    c = composite
    if c.stretch != "fixed" and c.scope == "archive" and reference is not None and name:
        key = (name, c.stretch, c.low_pct, c.high_pct)
        cached = reference._limits.get(key)
        if cached is not None:
            return cached
        sample = reference.band(name)
        if sample is not None and sample.size:
            lim = stretch_limits(sample, c.stretch, c.low_pct, c.high_pct, c.fixed_range)
            reference._limits[key] = lim
            return lim
    return stretch_limits(band, c.stretch, c.low_pct, c.high_pct, c.fixed_range)


def stretch(
    band: np.ndarray,
    composite: Composite,
    name: str | None = None,
    reference: ReferenceSample | None = None,
) -> np.ndarray:
    """One band stretched to 0..1 as the composite says."""
    return apply_stretch(band, *band_limits(band, composite, name, reference))


INDEX_RANGE = (-1.0, 1.0)  # indices are shown on their absolute scale, so colours keep meaning


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)`` in -1..1; 0 where both are 0."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        nd = np.where(total != 0, (a - b) / np.where(total == 0, 1, total), 0.0)
    return np.clip(nd, -1.0, 1.0).astype(np.float32)


def spectral_index(raw: np.ndarray, band_names: tuple[str, ...], name: str) -> np.ndarray:
    """NDVI / NDWI of one ``(C, H, W)`` tile."""
    ia, ib = band_indices(band_names, INDICES[name])
    return normalised_difference(raw[ia], raw[ib])


@lru_cache(maxsize=32)
def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colour map (grey when unknown)."""
    if name in ("gray", "grey"):
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp] * 3, axis=1)
    try:
        from matplotlib import colormaps

        cmap = colormaps[name]
    except (ImportError, KeyError):
        return colormap_lut("gray")
    rgba = cmap(np.linspace(0.0, 1.0, 256))
    return np.ascontiguousarray((rgba[:, :3] * 255.0 + 0.5).astype(np.uint8))


def to_uint8(unit: np.ndarray) -> np.ndarray:
    return (np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render(
    raw: np.ndarray,
    band_names: tuple[str, ...],
    composite: Composite,
    reference: ReferenceSample | None = None,
) -> np.ndarray:
    """``(H, W, 3)`` uint8 picture of one tile. Raises :class:`MissingBandsError` when the tile
    lacks a band the composite needs (callers disable such choices instead)."""
    raw = np.asarray(raw)
    if raw.ndim != 3 or raw.shape[0] != len(band_names):
        raise ValueError(f"expected ({len(band_names)}, H, W) values, got {raw.shape}")
    if composite.mode == "rgb":
        idx = band_indices(band_names, composite.rgb)
        channels = [
            stretch(raw[i], composite, n, reference)
            for i, n in zip(idx, composite.rgb, strict=True)
        ]
        return to_uint8(np.stack(channels, axis=-1))
    if composite.mode == "single":
        (i,) = band_indices(band_names, (composite.band,))
        unit = stretch(raw[i], composite, composite.band, reference)
        return colormap_lut(composite.colormap)[to_uint8(unit)]
    if composite.mode == "index":
        if composite.index not in INDICES:
            raise ValueError(f"unknown index {composite.index!r}")
        nd = spectral_index(raw, band_names, composite.index)
        unit = apply_stretch(nd, *INDEX_RANGE)
        cmap = INDEX_COLORMAPS.get(composite.index, composite.colormap)
        return colormap_lut(cmap)[to_uint8(unit)]
    raise ValueError(f"unknown composite mode {composite.mode!r}")


def render_safe(
    raw: np.ndarray,
    band_names: tuple[str, ...],
    composite: Composite,
    reference: ReferenceSample | None = None,
) -> np.ndarray:
    """Like :func:`render` but falls back to a composite the tile supports."""
    try:
        return render(raw, band_names, composite, reference)
    except MissingBandsError:
        return render(raw, band_names, fallback_composite(composite, tuple(band_names)), reference)


def band_statistics(raw: np.ndarray, band_names: tuple[str, ...]) -> list[dict]:
    """Per band name: min, mean, max, std of the file values (for the details pane), over the
    finite values only (NaN and infinite pixels are masked, as everywhere else)."""
    stats = []
    for name, band in zip(band_names, np.asarray(raw, dtype=np.float64), strict=True):
        band = band[np.isfinite(band)]
        if band.size == 0:
            band = np.array([np.nan])
        stats.append(
            {
                "band": name,
                "min": float(band.min()),
                "mean": float(band.mean()),
                "max": float(band.max()),
                "std": float(band.std()),
            }
        )
    return stats


def pixel_values(
    raw: np.ndarray, band_names: tuple[str, ...], row: int, col: int
) -> dict[str, float]:
    """All band values at one pixel, by band name (empty outside the tile)."""
    _, h, w = raw.shape
    if not (0 <= row < h and 0 <= col < w):
        return {}
    return {name: float(raw[i, row, col]) for i, name in enumerate(band_names)}


def band_histogram(band: np.ndarray, bins: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Histogram ``(counts, edges)`` of one band's finite values."""
    values = np.asarray(band, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros(bins), np.linspace(0, 1, bins + 1)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1.0
    return np.histogram(values, bins=bins, range=(lo, hi))
