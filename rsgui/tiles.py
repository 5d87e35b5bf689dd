"""The records that flow from archive files to views: a tile's metadata and batches of pixels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GeoRef:
    """Where a tile lies. ``crs`` as WKT/EPSG string; bounds in the CRS; centre in degrees."""

    crs: str | None = None
    bounds: tuple[float, float, float, float] | None = None  # left, bottom, right, top
    center_lonlat: tuple[float, float] | None = None
    footprint_lonlat: tuple[tuple[float, float], ...] | None = None  # closed ring, lon/lat


@dataclass(frozen=True)
class TileRecord:
    """One readable tile of an archive. ``path`` is relative to the archive root (POSIX form)."""

    index: int
    path: str
    label: str | None
    height: int
    width: int
    count: int
    georef: GeoRef = field(default_factory=GeoRef)


@dataclass(frozen=True)
class Problem:
    """A file that was skipped, and why, for the archive report."""

    path: str
    reason: str


@dataclass
class TileBatch:
    """Normalised pixels with their band names attached. ``pixels``: (N, C, H, W) float32.

    ``valid``: (N, H, W) bool, False where a pixel is NaN, infinite or the file's nodata value
    in any band read; None when every pixel of the batch is valid (the usual case, free). Masked
    pixels are filled with their tile's band mean over the valid pixels, so a consumer that
    ignores the mask (a CNN) still sees finite, plausible values; features that can skip pixels
    (histograms, means, percentiles) use the mask."""

    pixels: np.ndarray
    band_names: tuple[str, ...]
    records: list[TileRecord]
    valid: np.ndarray | None = None

    def __post_init__(self) -> None:
        assert self.pixels.ndim == 4 and self.pixels.shape[1] == len(self.band_names)
        if self.valid is not None:
            n, _, h, w = self.pixels.shape
            assert self.valid.shape == (n, h, w) and self.valid.dtype == bool

    @property
    def valid_fraction(self) -> np.ndarray:
        """(N,) fraction of each tile's pixels that are valid (1.0 for a clean tile)."""
        if self.valid is None:
            return np.ones(len(self.pixels))
        return self.valid.reshape(len(self.valid), -1).mean(axis=1)
