"""Convert Natural Earth's 110m countries (public domain) into ``rsgui/resources/world_110m.json``.

Run once at development time; the application only reads the JSON (no internet, no GIS library
at run time). The shapefile comes with the geopandas 0.14 wheel::

    pip download --no-deps geopandas==0.14.4 -d /tmp/gpd
    python tools/make_world_outline.py /tmp/gpd/geopandas-0.14.4-py3-none-any.whl

The .shp polygon records are parsed here by hand (ESRI shapefile technical description, 1998):
each ring becomes a list of [lon, lat] rounded to 0.01 degree, repeated points dropped.
"""

from __future__ import annotations

import json
import struct
import sys
import zipfile
from pathlib import Path

MEMBER = "geopandas/datasets/naturalearth_lowres/naturalearth_lowres.shp"
OUT = Path(__file__).resolve().parents[1] / "rsgui" / "resources" / "world_110m.json"


def polygon_rings(shp: bytes) -> list[list[tuple[float, float]]]:
    """Every ring of every polygon record (shape types 5 and 15) of a .shp file's bytes."""
    rings = []
    pos = 100  # the file header
    while pos + 8 <= len(shp):
        _num, words = struct.unpack(">ii", shp[pos : pos + 8])
        content = shp[pos + 8 : pos + 8 + 2 * words]
        pos += 8 + 2 * words
        (kind,) = struct.unpack("<i", content[:4])
        if kind not in (5, 15):
            continue
        n_parts, n_points = struct.unpack("<ii", content[36:44])
        parts = list(struct.unpack(f"<{n_parts}i", content[44 : 44 + 4 * n_parts]))
        at = 44 + 4 * n_parts
        xy = struct.unpack(f"<{2 * n_points}d", content[at : at + 16 * n_points])
        points = list(zip(xy[0::2], xy[1::2], strict=True))
        for a, b in zip(parts, parts[1:] + [n_points], strict=True):
            rings.append(points[a:b])
    return rings


def simplify(ring: list[tuple[float, float]], digits: int = 2) -> list[list[float]]:
    out: list[list[float]] = []
    for lon, lat in ring:
        p = [round(lon, digits), round(lat, digits)]
        if not out or p != out[-1]:
            out.append(p)
    return out


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        shp = z.read(MEMBER)
    rings = [r for r in (simplify(r) for r in polygon_rings(shp)) if len(r) >= 4]
    doc = {
        "source": "Natural Earth 1:110m Admin 0 countries (naturalearth_lowres of geopandas "
        "0.14.4), public domain; rings of [lon, lat], rounded to 0.01 degree",
        "rings": rings,
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(rings)} rings, {sum(map(len, rings))} points, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
