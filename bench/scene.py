"""Benchmark a full-size Sentinel-2 scene opened as an archive (rsgui.scenes).

    python bench/scene.py [DIR]   # default /tmp/rsgui-scene-bench

Writes (once) a synthetic 10980x10980 scene as 13 per-band tiled GeoTIFFs at their native
resolutions (10 m: B02 B03 B04 B08 at 10980 px; 20 m: B05 B06 B07 B8A B11 B12 at 5490; 60 m:
B01 B09 B10 at 1830), smooth plausible content and a nodata corner outside the swath. Then times
the first open (headers, nodata screening, footprints), the second open (cache), ``spectral``
indexing, reading ms10 through ``Archive.iter_batches`` and through plain rasterio windowed reads
of the same windows with the same resampling (datasets kept open), and peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsgui.archive import Archive  # noqa: E402
from rsgui.bands import BAND_SETS  # noqa: E402

SIDE = 10980
BANDS = {
    10: ("B02", "B03", "B04", "B08"),
    20: ("B05", "B06", "B07", "B8A", "B11", "B12"),
    60: ("B01", "B09", "B10"),
}
PREFIX = "T33UUP_20170613T101031"
X0, Y0 = 399960.0, 5800020.0


def _content(band_no: int, rows: np.ndarray, cols: np.ndarray, res: int) -> np.ndarray:
    """Smooth fields and texture in metres, so every resolution shows the same ground; 0 in a
    corner triangle outside the swath."""
    y = rows[:, None] * res
    x = cols[None, :] * res
    v = 1200 + 150 * band_no
    v = v + 500 * np.sin(x / 2300.0 + band_no) * np.cos(y / 1700.0)
    v = v + 200 * np.sin(x / 310.0) * np.sin(y / 270.0 + band_no)
    out = np.clip(v, 1, 10000).astype(np.uint16)
    out[(x + y) < 0.35 * SIDE * 10 * 2 * 0.5] = 0  # the corner outside the swath
    return out


def make_scene(root: Path) -> Path:
    import rasterio
    from affine import Affine

    marker = root / ".bench.json"
    settings = {"side": SIDE, "version": 1}
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    for res, names in BANDS.items():
        side = SIDE * 10 // res
        for k, band in enumerate(names):
            profile = dict(
                driver="GTiff", dtype="uint16", count=1, height=side, width=side,
                crs="EPSG:32633", transform=Affine(res, 0, X0, 0, -res, Y0), tiled=True,
                blockxsize=512, blockysize=512, nodata=0,
            )  # fmt: skip
            with rasterio.open(root / f"{PREFIX}_{band}.tif", "w", **profile) as dst:
                cols = np.arange(side)
                for r0 in range(0, side, 512):
                    rows = np.arange(r0, min(side, r0 + 512))
                    win = rasterio.windows.Window(0, r0, side, len(rows))
                    dst.write(_content(k + res, rows, cols, res), 1, window=win)
            print(f"  {band} ({side} px): {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    marker.write_text(json.dumps(settings))
    return root


def plain_rasterio(root: Path, archive: Archive, names: tuple[str, ...]) -> float:
    """Seconds to read every tile's ``names`` with one rasterio windowed read per band and tile:
    the same windows and cubic-spline resampling, datasets opened once."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    res_of = {b: r for r, bs in BANDS.items() for b in bs}
    ds = {b: rasterio.open(root / f"{PREFIX}_{b}.tif") for b in names}
    t = archive.tile_shape[0]
    t0 = time.perf_counter()
    for rec in archive.records:
        r, c = int(rec.path[-13:-7]), int(rec.path[-6:])
        out = np.empty((len(names), t, t), np.uint16)
        for k, b in enumerate(names):
            f = res_of[b] / 10
            if f == 1:
                out[k] = ds[b].read(1, window=Window(c, r, t, t))
            else:
                out[k] = ds[b].read(1, window=Window(c / f, r / f, t / f, t / f), out_shape=(t, t),
                                    resampling=Resampling.cubic_spline)  # fmt: skip
    elapsed = time.perf_counter() - t0
    for d in ds.values():
        d.close()
    return elapsed


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="?", default="/tmp/rsgui-scene-bench")
    args = ap.parse_args(argv)
    from rsgui.progress import drive
    from rsgui.services.indexing import index_job

    root = make_scene(Path(args.dir))
    shutil.rmtree(root / ".rsgui", ignore_errors=True)
    rss0 = maxrss_mb()
    t0 = time.perf_counter()
    a = Archive.open(root)
    first = time.perf_counter() - t0
    rss_open = maxrss_mb()
    warm = []
    for _ in range(3):
        t0 = time.perf_counter()
        b = Archive.open(root)
        warm.append(time.perf_counter() - t0)
    assert b.cache_hit and len(b) == len(a)
    names = BAND_SETS["ms10"]
    t0 = time.perf_counter()
    n = sum(len(batch.records) for batch in a.iter_batches(bands="ms10", batch_size=256))
    ours = time.perf_counter() - t0
    rss_read = maxrss_mb()
    plain = plain_rasterio(root, a, names)
    out = Path(args.dir + "-index")
    t0 = time.perf_counter()
    drive(index_job(a, "spectral", out, bands="ms10", bits=64))
    index_s = time.perf_counter() - t0
    rss_index = maxrss_mb()
    rows = [
        ("scene", f"{SIDE}x{SIDE}"),
        ("tiles (64 px, kept)", f"{len(a)}"),
        ("left out (nodata)", a.problems[0].reason.split(" tiles")[0] if a.problems else "0"),
        ("first open s", f"{first:.2f}"),
        ("second open (cache), median of 3 s", f"{sorted(warm)[1]:.3f}"),
        ("read ms10 Archive.iter_batches s", f"{ours:.1f}"),
        ("read ms10 Archive.iter_batches tiles/s", f"{n / ours:.0f}"),
        ("read ms10 plain rasterio windows s", f"{plain:.1f}"),
        ("read ms10 plain rasterio windows tiles/s", f"{n / plain:.0f}"),
        ("index spectral ms10 64 bits s", f"{index_s:.1f}"),
        ("index spectral tiles/s", f"{len(a) / index_s:.0f}"),
        ("peak RSS before open MB", f"{rss0:.0f}"),
        ("peak RSS after open MB", f"{rss_open:.0f}"),
        ("peak RSS after read MB", f"{rss_read:.0f}"),
        ("peak RSS after index MB", f"{rss_index:.0f}"),
    ]
    w = max(len(r[0]) for r in rows)
    for name, val in rows:
        print(f"{name:<{w}}  {val:>12}")
    print(
        f"ratio_read_vs_rasterio={plain / ours:.2f} first_open_s={first:.2f} "
        f"second_open_s={sorted(warm)[1]:.3f} index_tiles_per_s={len(a) / index_s:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
