"""Export one archive tile as a georeferenced GeoTIFF chip (a scene window becomes a file).

The chip holds the tile's file values (not the normalised pixels), so it reads back like any
tile of the archive: band descriptions name the bands, the CRS and transform place it where the
tile lies, and the scene's nodata value travels with it. Written atomically by
:func:`rsgui.geotiff.write_geotiff`.
"""

from __future__ import annotations

import os
from pathlib import Path

from rsgui.bands import resolve_band_set
from rsgui.geotiff import write_geotiff


def resolve_record(archive, index_or_path: int | str) -> int:
    """A record position from a number or an archive-relative record path
    (``scene.tif#r000128c000064``, ``Forest/Forest_1.tif``); ValueError naming it otherwise."""
    text = str(index_or_path).strip()
    if text.lstrip("-").isdigit():
        i = int(text)
        if not 0 <= i < len(archive):
            raise ValueError(f"tile index {i} out of range (archive has {len(archive)} tiles)")
        return i
    i = archive.find(text)
    if i is None:
        raise ValueError(f"{archive.root}: no tile {text!r} in this archive")
    return i


def export_chip(archive, index: int, path: str | os.PathLike, bands="all") -> Path:
    """Write record ``index`` of ``archive`` as a GeoTIFF at ``path`` with ``bands`` (a band
    set name or list; ``"all"``: every band). Returns the path written."""
    names = resolve_band_set(list(bands) if not isinstance(bands, str) else bands,
                             archive.band_names)  # fmt: skip
    raw = archive.read_raw(index)
    pixels = raw[[archive.band_names.index(b) for b in names]]
    rec = archive.records[index]
    geo = rec.georef
    crs = transform = None
    if geo.crs and geo.bounds:
        from affine import Affine

        left, bottom, right, top = geo.bounds
        h, w = pixels.shape[1:]
        transform = Affine((right - left) / w, 0.0, left, 0.0, -(top - bottom) / h, top)
        crs = geo.crs
    nodata = None
    kinds = getattr(archive, "_kinds", None)
    record_kind = getattr(archive, "_record_kind", None)
    if kinds is not None and record_kind is not None:
        nodata = kinds[int(record_kind[index])].get("nodata")
    return write_geotiff(path, pixels, names, crs=crs, transform=transform, nodata=nodata)
