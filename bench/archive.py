"""Benchmark the archive layer on a EuroSAT-sized archive (27,000 tiles of 13 x 64 x 64 uint16).

    python bench/archive.py [--dir /tmp/rsgui-bench-archive] [--n 27000] [--read-limit N]
                            [--header-reader hand,tifffile] [--repeat 3]
    python bench/archive.py --jpeg ../shared/data/eurosat-rgb [--repeat 3]   # the JPEG case
    python bench/archive.py --jpeg synthetic [--n 27000]

The synthetic archive is made once and reused. Writing 27,000 GeoTIFFs through GDAL takes
minutes, so a handful of tiles per class are rendered with :mod:`rsgui.demo`, one GeoTIFF header
per CRS is written by rasterio, and each file is that header (with its own tie point patched in)
plus shifted pixels of a rendered tile. Every file is a valid uncompressed GeoTIFF, as in EuroSAT.

Prints cold and warm open times, tiles/s reading ms10 through ``Archive.iter_batches`` and through
plain rasterio open+read of the same files, and a final ``ratio_read_vs_rasterio=X warm_open_s=Y``.
``--compare-gdal`` also times the GDAL-only paths (the fallback for compressed or tiled files).
``--header-reader hand,tifffile`` times the cold open with each plain-GeoTIFF tag reader, in turn,
``--repeat`` times (best of): the hand-written IFD parser of :mod:`rsgui.tiff_header` (what the
application uses) against the same checks fed by ``tifffile``'s tag reader.

``--jpeg DIR`` times a JPEG/PNG archive instead (EuroSAT RGB): cold open (headers read by
:mod:`rsgui.image_header`, the manifest in a fresh ``RSGUI_CACHE_DIR``, so a read-only folder
works and nothing is copied), the same with every header through GDAL, plain rasterio opening
every file for its header, warm open, and tiles/s reading rgb against plain rasterio.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rsgui import demo  # noqa: E402
from rsgui import manifest as mf  # noqa: E402
from rsgui import tiff_header as th  # noqa: E402
from rsgui.archive import Archive  # noqa: E402
from rsgui.bands import BAND_SETS, EUROSAT_MS_ORDER, band_indices  # noqa: E402

# EuroSAT's class sizes (27,000 in all)
EUROSAT_COUNTS = {
    "AnnualCrop": 3000, "Forest": 3000, "HerbaceousVegetation": 3000, "Highway": 2500,
    "Industrial": 2500, "Pasture": 2000, "PermanentCrop": 2500, "Residential": 3000,
    "River": 2500, "SeaLake": 3000,
}  # fmt: skip
X0, Y0 = 123456.0, 5432100.0  # template tie point, patched per file


def _template(epsg: int, size: int) -> tuple[bytes, int, int, int]:
    """(header bytes, pixel offset, tie-point x offset, tie-point y offset) of a GeoTIFF."""
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.io import MemoryFile

    data = np.arange(13 * size * size, dtype=np.uint16).reshape(13, size, size)
    profile = dict(
        driver="GTiff", dtype="uint16", count=13, height=size, width=size, interleave="pixel",
        crs=CRS.from_epsg(epsg), transform=Affine(10.0, 0.0, X0, 0.0, -10.0, Y0),
    )  # fmt: skip
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data)
        raw = mem.read()
    pix = data.transpose(1, 2, 0).tobytes()
    off = raw.find(pix)
    if off < 0 or off + len(pix) != len(raw):
        raise RuntimeError("unexpected GeoTIFF layout; cannot use the fast writer")
    xo, yo = raw.find(struct.pack("<d", X0)), raw.find(struct.pack("<d", Y0))
    if xo < 0 or yo < 0 or xo > off:
        raise RuntimeError("tie point not found in the template")
    return raw[:off], off, xo, yo


def make_bench_archive(root: Path, n: int, size: int = 64, seed: int = 0) -> Path:
    """Write (once) an archive of ``n`` tiles with EuroSAT's class proportions."""
    marker = root / ".rsgui-bench.json"
    settings = {"n": n, "size": size, "seed": seed, "version": 1}
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    t0 = time.perf_counter()
    headers = {e: _template(e, size) for e in (32631, 32632, 32633, 32634)}
    total = sum(EUROSAT_COUNTS.values())
    k = 0
    try:
        for ci, (cls, count) in enumerate(EUROSAT_COUNTS.items()):
            count = max(1, round(count * n / total))
            bases = [
                demo.make_tile(cls, np.random.default_rng([seed, ci, b]), size) for b in range(8)
            ]
            # pixel-interleaved (H, W, C) as stored in the file
            bases = [np.ascontiguousarray(b.transpose(1, 2, 0)) for b in bases]
            (tmp / cls).mkdir()
            rng = np.random.default_rng([seed, ci])
            for i in range(1, count + 1):
                base = bases[i % len(bases)]
                dy, dx = rng.integers(0, size, 2)
                pix = np.roll(base, (int(dy), int(dx)), axis=(0, 1))
                epsg = 32631 + k % 4
                head, _, xo, yo = headers[epsg]
                head = bytearray(head)
                head[xo : xo + 8] = struct.pack("<d", 300_000.0 + 640.0 * (k % 500))
                head[yo : yo + 8] = struct.pack("<d", 5_000_000.0 + 640.0 * (k // 500))
                with open(tmp / cls / f"{cls}_{i}.tif", "wb") as f:
                    f.write(head)
                    f.write(pix.tobytes())
                k += 1
            print(f"  {cls}: {count} tiles ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        (tmp / marker.name).write_text(json.dumps(settings))
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"made {k} tiles in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return root


def tifffile_header(f, file_size: int) -> dict:
    """:func:`rsgui.tiff_header.read_tiff_header` with the tags read by tifffile instead of the
    hand-written IFD parser (the same checks and entry; for comparing the two)."""
    import tifffile

    try:
        with tifffile.TiffFile(f) as tif:
            if tif.is_bigtiff:
                raise th.NotPlain
            bo = tif.byteorder
            tags = {}
            for tag in tif.pages.first.tags.values():
                v = tag.value
                if isinstance(v, str):
                    v = (v.encode("utf-8"),)
                elif isinstance(v, bytes):
                    v = (v.rstrip(b"\0"),)
                elif not isinstance(v, tuple):
                    v = (v,)
                tags[tag.code] = v
    except th.NotPlain:
        raise
    except Exception as e:  # tifffile raises its own errors for broken files: GDAL words them
        raise th.NotPlain from e
    return th.plain_entry(bo, tags, file_size)


HEADER_READERS = {"hand": th.read_tiff_header, "tifffile": tifffile_header}


def _clear_cache(root: Path) -> None:
    shutil.rmtree(root / mf.CACHE_DIR_NAME, ignore_errors=True)
    shutil.rmtree(mf.user_cache_path(root).parent, ignore_errors=True)


def bench_rasterio(paths: list[Path], env: dict | None = None) -> float:
    """Plain rasterio: open each file and read the ten ms10 bands, as a baseline (tiles/s)."""
    import rasterio

    idx = [i + 1 for i in band_indices(EUROSAT_MS_ORDER, BAND_SETS["ms10"])]
    t0 = time.perf_counter()
    with rasterio.Env(**(env or {})):
        for p in paths:
            with rasterio.open(p) as src:
                src.read(idx)
    return len(paths) / (time.perf_counter() - t0)


def cold_open(root: Path, reader: str, workers: int | None) -> float:
    """Seconds to open ``root`` with no cache, plain GeoTIFF tags read by ``reader``."""
    _clear_cache(root)
    gc.collect()
    real = th.read_tiff_header
    th.read_tiff_header = HEADER_READERS[reader]
    try:
        t0 = time.perf_counter()
        a = Archive.open(root, workers=workers)
        took = time.perf_counter() - t0
    finally:
        th.read_tiff_header = real
    assert not a.problems and all("raw" in k for k in a._kinds), a.report()
    return took


def bench_archive(a: Archive, indices: np.ndarray) -> float:
    t0 = time.perf_counter()
    n = 0
    for b in a.iter_batches("ms10", batch_size=256, indices=indices):
        n += len(b.records)
    return n / (time.perf_counter() - t0)


def make_jpeg_archive(root: Path, n: int, size: int = 64, seed: int = 0) -> Path:
    """Write (once) ``n`` EuroSAT-RGB-like JPEGs: a few tiles per class encoded by GDAL, each
    file a copy of one of them (the header reader sees real JPEG files)."""
    from rasterio.io import MemoryFile

    marker = root / ".rsgui-bench.json"
    settings = {"n": n, "size": size, "seed": seed, "version": 1, "format": "jpeg"}
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    total = sum(EUROSAT_COUNTS.values())
    try:
        for ci, (cls, count) in enumerate(EUROSAT_COUNTS.items()):
            encoded = []
            for b in range(4):
                tile = demo.make_tile(cls, np.random.default_rng([seed, ci, b]), size)
                rgb = np.clip(tile[[3, 2, 1]] / 12, 0, 255).astype(np.uint8)  # B04 B03 B02
                with MemoryFile() as mem:
                    with mem.open(driver="JPEG", dtype="uint8", count=3, height=size,
                                  width=size) as dst:  # fmt: skip
                        dst.write(rgb)
                    encoded.append(mem.read())
            (tmp / cls).mkdir()
            for i in range(1, max(1, round(count * n / total)) + 1):
                (tmp / cls / f"{cls}_{i}.jpg").write_bytes(encoded[i % len(encoded)])
        (tmp / marker.name).write_text(json.dumps(settings))
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def bench_jpeg(root: Path, repeat: int, read_limit: int | None) -> int:
    """Cold and warm open of a JPEG/PNG archive (``root`` may be read-only: the manifest goes to
    a fresh ``RSGUI_CACHE_DIR`` for each cold open, nothing is copied), against plain rasterio
    opening every file for its header, one by one; then tiles/s reading rgb either way."""
    import rasterio

    from rsgui.listing import list_files

    def cold(fast: bool) -> float:
        with tempfile.TemporaryDirectory(prefix="rsgui-bench-cache-") as cache:
            os.environ["RSGUI_CACHE_DIR"] = cache
            shutil.rmtree(root / mf.CACHE_DIR_NAME, ignore_errors=True)
            th.FAST_TIFF = fast
            gc.collect()
            try:
                t0 = time.perf_counter()
                a = Archive.open(root)
                took = time.perf_counter() - t0
            finally:
                th.FAST_TIFF = True
        assert not a.cache_hit and len(a), a.report()
        return took

    colds = [cold(True) for _ in range(max(1, repeat))]
    gdal_cold = cold(False)
    files = [root / f[0] for f in list_files(root) if not f[3]]
    files = [p for p in files if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    t0 = time.perf_counter()
    with rasterio.Env(**th.GDAL_ENV):
        for p in files:
            with rasterio.open(p) as src:
                (src.count, src.height, src.width, src.dtypes[0])
    plain_headers = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="rsgui-bench-cache-") as cache:
        os.environ["RSGUI_CACHE_DIR"] = cache
        a = Archive.open(root)
        warm_runs = []
        for _ in range(5):
            gc.collect()
            t0 = time.perf_counter()
            a = Archive.open(root)
            warm_runs.append(time.perf_counter() - t0)
            assert a.cache_hit, a.report()
        n_read = min(len(a), read_limit or 2000)
        indices = np.linspace(0, len(a) - 1, n_read).astype(np.int64)
        t0 = time.perf_counter()
        for _ in a.iter_batches("rgb", batch_size=256, indices=indices):
            pass
        ours = n_read / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        with rasterio.Env(**th.GDAL_ENV):
            for i in indices:
                with rasterio.open(a.path_of(int(i))) as src:
                    src.read()
        plain = n_read / (time.perf_counter() - t0)
    warm = float(np.median(warm_runs))
    best = min(colds)
    rows = [
        ("archive", str(root)),
        ("tiles", f"{len(a)}"),
        (f"cold open (headers read directly), best of {len(colds)} s", f"{best:.2f}"),
        ("cold open runs s", " ".join(f"{t:.2f}" for t in colds)),
        ("cold open, every header through GDAL s", f"{gdal_cold:.2f}"),
        ("plain rasterio: open every file for its header s", f"{plain_headers:.2f}"),
        ("warm open (manifest), median of 5 s", f"{warm:.3f}"),
        (f"read rgb Archive.iter_batches tiles/s ({n_read} tiles)", f"{ours:.0f}"),
        ("read rgb plain rasterio tiles/s", f"{plain:.0f}"),
    ]
    w = max(len(r[0]) for r in rows)
    for name, val in rows:
        print(f"{name:<{w}}  {val:>10}")
    print(
        f"jpeg_cold_open_s={best:.2f} jpeg_warm_open_s={warm:.3f} "
        f"ratio_cold_vs_rasterio_headers={best / plain_headers:.2f} "
        f"ratio_read_vs_rasterio={ours / plain:.2f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp/rsgui-bench-archive")
    ap.add_argument("--n", type=int, default=27000, help="tiles in the archive")
    ap.add_argument("--read-limit", type=int, default=None, help="tiles to read (default all)")
    ap.add_argument("--workers", type=int, default=None, help="header-reading threads")
    ap.add_argument(
        "--compare-gdal", action="store_true", help="also time the GDAL-only header/pixel paths"
    )
    ap.add_argument(
        "--header-reader",
        default="hand",
        help="plain-GeoTIFF tag readers to time the cold open with, comma-separated: "
        + ", ".join(HEADER_READERS)
        + " (the first is the one reported as the cold open)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="cold opens per reader (best of)")
    ap.add_argument(
        "--jpeg",
        metavar="DIR",
        default=None,
        help="the JPEG case instead: cold and warm open of the JPEG/PNG archive DIR (read-only "
        "is fine), or 'synthetic' for --n generated JPEGs in --dir-jpeg",
    )
    ap.add_argument("--dir-jpeg", default="/tmp/rsgui-bench-archive-jpeg")
    args = ap.parse_args(argv)
    if args.jpeg:
        root = Path(args.jpeg)
        if args.jpeg == "synthetic":
            root = make_jpeg_archive(Path(args.dir_jpeg).resolve(), args.n)
        return bench_jpeg(root.resolve(), args.repeat, args.read_limit)
    readers = [r.strip() for r in args.header_reader.split(",") if r.strip()]
    if not readers or any(r not in HEADER_READERS for r in readers):
        ap.error(f"--header-reader: choose from {', '.join(HEADER_READERS)}")

    root = make_bench_archive(Path(args.dir).resolve(), args.n)
    rows: list[tuple[str, str]] = []
    if args.compare_gdal:
        _clear_cache(root)
        th.FAST_TIFF = False
        t0 = time.perf_counter()
        Archive.open(root, workers=args.workers)
        rows.append(("cold open, every header through GDAL s", f"{time.perf_counter() - t0:.2f}"))
        th.FAST_TIFF = True
    colds: dict[str, list[float]] = {r: [] for r in readers}
    for _ in range(max(1, args.repeat)):  # readers in turn, so a busy moment hits them alike
        for r in readers:
            colds[r].append(cold_open(root, r, args.workers))
    cold = min(colds[readers[0]])
    for r in readers[1:]:
        rows.append(
            (f"cold open, tags read by {r}, best of {args.repeat} s", f"{min(colds[r]):.2f}")
        )
    if len(readers) > 1 or args.repeat > 1:
        for r in readers:
            runs = " ".join(f"{t:.2f}" for t in colds[r])
            print(f"cold open runs, tags read by {r}: {runs}", file=sys.stderr)
    a = Archive.open(root)
    warm_runs = []
    for _ in range(5):  # median of five: the machine may be shared
        del a
        gc.collect()
        t0 = time.perf_counter()
        a = Archive.open(root)
        warm_runs.append(time.perf_counter() - t0)
        assert a.cache_hit and not a.problems, a.report()
    warm = float(np.median(warm_runs))

    n_read = min(len(a), args.read_limit or len(a))
    indices = np.linspace(0, len(a) - 1, n_read).astype(np.int64)
    paths = [a.path_of(int(i)) for i in indices]
    # alternate the readers so page cache and CPU contention treat them alike
    half = n_read // 2
    r1 = bench_rasterio(paths[:half])
    a1 = bench_archive(a, indices[:half])
    a2 = bench_archive(a, indices[half:])
    r2 = bench_rasterio(paths[half:])
    ours, plain = (a1 + a2) / 2, (r1 + r2) / 2
    if args.compare_gdal:
        sub = paths[: max(1, half // 2)]
        no_dir = bench_rasterio(sub, {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"})
        rows.append(("read ms10 rasterio, no folder listing tiles/s", f"{no_dir:.0f}"))
        gdal_archive = Archive.open(root)
        gdal_archive._plain_ok = False  # every read through rasterio, as for compressed files
        g = bench_archive(gdal_archive, indices[: max(1, half // 2)])
        rows.append(("read ms10 Archive through GDAL tiles/s", f"{g:.0f}"))

    rows = [
        ("tiles", f"{len(a)}"),
        (f"cold open (headers read, {readers[0]}), best of {args.repeat} s", f"{cold:.2f}"),
        ("warm open (manifest), median of 5 s", f"{warm:.3f}"),
        ("warm open fastest s", f"{min(warm_runs):.3f}"),
        ("read ms10 Archive.iter_batches tiles/s", f"{ours:.0f}"),
        ("read ms10 plain rasterio tiles/s", f"{plain:.0f}"),
        *rows,
    ]
    w = max(len(r[0]) for r in rows)
    for name, val in rows:
        print(f"{name:<{w}}  {val:>10}")
    print(
        f"ratio_read_vs_rasterio={ours / plain:.2f} warm_open_s={warm:.3f} cold_open_s={cold:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
