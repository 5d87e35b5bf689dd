"""The one GeoTIFF writer: demo tiles, generated tiles, exported chips all go through here.

Written atomically (never a partial file), band names stored as band descriptions so the archive
reader knows each band by name, georeference only when the tile has one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rsgui.atomic import atomic_path


def write_geotiff(
    path: str | os.PathLike,
    pixels: np.ndarray,
    band_names: Sequence[str] | None = None,
    crs: str | int | None = None,
    transform=None,
    nodata: float | None = None,
    **creation,
) -> Path:
    """Write ``pixels`` (C, H, W) as ``path``; ``crs`` an EPSG code or WKT/PROJ text."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.errors import NotGeoreferencedWarning

    if pixels.ndim != 3:
        raise ValueError(f"{path}: a tile is (bands, height, width), got shape {pixels.shape}")
    c, h, w = pixels.shape
    if band_names is not None and len(band_names) != c:
        raise ValueError(f"{path}: {c} bands but {len(band_names)} band names")
    profile = {"driver": "GTiff", "dtype": str(pixels.dtype), "count": c, "height": h,
               "width": w, "interleave": "pixel", **creation}  # fmt: skip
    if crs is not None:
        profile["crs"] = CRS.from_epsg(crs) if isinstance(crs, int) else CRS.from_user_input(crs)
        if transform is not None:
            profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(pixels)
            for i, name in enumerate(band_names or (), start=1):
                dst.set_band_description(i, name)
    return Path(path)
