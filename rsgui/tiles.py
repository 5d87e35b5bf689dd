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
    """Normalised pixels with their band names attached. ``pixels``: (N, C, H, W) float32."""

    pixels: np.ndarray
    band_names: tuple[str, ...]
    records: list[TileRecord]

    def __post_init__(self) -> None:
        assert self.pixels.ndim == 4 and self.pixels.shape[1] == len(self.band_names)
