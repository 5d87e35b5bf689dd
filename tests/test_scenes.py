"""Sentinel-2 scenes opened as archives (rsgui.scenes): grid, resampling, nodata, georeference,
cache, queries and chips, on tiny scenes written here with rasterio (torchgeo's manner).

JPEG 2000: the GDAL in rasterio writes it (JP2OpenJPEG, lossless with ``REVERSIBLE=YES``), so
the ``.SAFE`` tree is tested with real ``.jp2`` band files, and once with ``.tif`` names too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from rsgui import scenes  # noqa: E402
from rsgui.archive import Archive  # noqa: E402
from rsgui.bands import EUROSAT_MS_ORDER  # noqa: E402
from rsgui.layouts import LayoutError  # noqa: E402

CRS = "EPSG:32633"
X0, Y0 = 399960.0, 5800020.0
B10M = ("B02", "B03", "B04", "B08")
B20M = ("B05", "B06", "B07", "B8A", "B11", "B12")
B60M = ("B01", "B09", "B10")
NODATA_COLS = 80  # the multi-band scene is 0 in its first 80 columns (outside the swath)


def _smooth(rng: np.random.Generator, h: int, w: int, base: float) -> np.ndarray:
    """Plausible reflectance: a smooth field plus texture, never 0 (0 is nodata)."""
    yy, xx = np.mgrid[0:h, 0:w]
    field = base + 400 * np.sin(xx / 17.0 + rng.uniform(0, 6)) * np.cos(yy / 23.0)
    return np.clip(field + rng.normal(0, 150, (h, w)), 1, 10000).astype(np.uint16)


def write_raster(path: Path, data: np.ndarray, res: float, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    c, h, w = data.shape
    profile = dict(
        driver="GTiff", dtype=str(data.dtype), count=c, height=h, width=w, crs=CRS,
        transform=Affine(res, 0, X0, 0, -res, Y0),
    )  # fmt: skip
    if path.suffix == ".jp2":
        profile.update(driver="JP2OpenJPEG", REVERSIBLE="YES", QUALITY="100")
    profile.update(kw)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def write_multiband(path: Path, h: int = 260, w: int = 300, nodata=0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    data = np.stack([_smooth(rng, h, w, 800 + 100 * b) for b in range(13)])
    data[:, :, :NODATA_COLS] = 0
    return write_raster(path, data, 10.0, nodata=nodata)


def _band_data(band: str, seed: int = 1) -> np.ndarray:
    side = 256 if band in B10M else 128 if band in B20M else 43
    rng = np.random.default_rng([seed, int(band[1:3].replace("8A", "13"))])
    return _smooth(rng, side, side, 1000)[None]


def _res(band: str) -> int:
    return 10 if band in B10M else 20 if band in B20M else 60


def write_perband(folder: Path, prefix="T33UUP_20170613T101031", res_suffix=False) -> Path:
    for band in B10M + B20M + B60M:
        tail = f"_{_res(band)}m" if res_suffix else ""
        write_raster(folder / f"{prefix}_{band}{tail}.tif", _band_data(band), _res(band))
    return folder


def write_safe(root: Path, ext: str = ".jp2") -> Path:
    """An L2A-like tree: R10m, R20m (with B02-B04 again at 20 m) and R60m (every band)."""
    img = root / "S2A_MSIL2A_20170613T101031_N0205_R022_T33UUP_20170613T101608.SAFE"
    img = img / "GRANULE" / "L2A_T33UUP_A010362_20170613T101608" / "IMG_DATA"
    stem = "T33UUP_20170613T101031"
    for band in B10M:
        write_raster(img / "R10m" / f"{stem}_{band}_10m{ext}", _band_data(band), 10)
    for band in B20M + ("B02", "B03", "B04"):
        data = _band_data(band) if band in B20M else _band_data(band)[:, ::2, ::2] // 2
        write_raster(img / "R20m" / f"{stem}_{band}_20m{ext}", data, 20)
    for band in B60M:
        write_raster(img / "R60m" / f"{stem}_{band}_60m{ext}", _band_data(band), 60)
    write_raster(img / "R10m" / f"{stem}_TCI_10m{ext}", np.ones((3, 8, 8), np.uint8), 10)
    return root


def _expected_kept(rc: np.ndarray, tile: int) -> np.ndarray:
    cols = rc[:, 1]
    bad = np.clip(NODATA_COLS - cols, 0, tile) / tile
    return bad <= 0.5


# ---------------------------------------------------------------------------- grid and nodata
@pytest.mark.parametrize(
    ("tile", "stride", "n_grid", "n_kept"), [(64, None, 16, 12), (64, 32, 56, 42), (50, 25, 99, 72)]
)
def test_grid_and_nodata_tiles(tmp_path, tile, stride, n_grid, n_kept):
    write_multiband(tmp_path / "scene.tif")
    a = Archive.open(tmp_path, layout="scenes", tile_size=tile, stride=stride)
    rc = scenes.grid(260, 300, tile, stride or tile)
    assert len(rc) == n_grid
    assert _expected_kept(rc, tile).sum() == n_kept == len(a)
    assert a.tile_shape == (tile, tile) and a.band_names == EUROSAT_MS_ORDER
    kept = [tuple(r) for r in rc[_expected_kept(rc, tile)]]
    assert [r.path for r in a.records] == [f"scene.tif#r{r:06d}c{c:06d}" for r, c in kept]
    # one summary line per scene, not one problem per tile
    assert [p.path for p in a.problems] == ["scene.tif"]
    assert f"{n_grid - n_kept} of {n_grid} tiles mostly nodata" in a.problems[0].reason
    assert a.preset == "s2-scene" and a.normalisation.divisor == 4095


def test_a_grid_beyond_the_limit_is_refused_in_one_line(tmp_path, monkeypatch):
    write_multiband(tmp_path / "scene.tif")
    monkeypatch.setattr(scenes, "MAX_GRID", 50)
    with pytest.raises(ValueError, match="scene.tif: 300x260 pixels cut by 64 px every 16 px"):
        Archive.open(tmp_path, layout="scenes", tile_size=64, stride=16)
    assert len(Archive.open(tmp_path, layout="scenes", tile_size=64)) == 12  # 16 cells: fine


def test_partly_nodata_tile_is_masked(tmp_path):
    write_multiband(tmp_path / "scene.tif")
    a = Archive.open(tmp_path, layout="scenes")
    i = a.find("scene.tif#r000000c000064")  # 16 of its 64 columns are outside the swath
    batch = a.read([i])
    assert batch.valid is not None
    assert not batch.valid[0, :, : NODATA_COLS - 64].any() and batch.valid[0, :, 16:].all()
    assert np.isfinite(batch.pixels).all()


def test_large_geotiff_is_a_scene_without_asking(tmp_path, write_tile):
    write_tile(tmp_path / "big.tif", bands=4, size=(1100, 1030), compress="deflate",
               descriptions=["B02", "B03", "B04", "B08"])  # fmt: skip
    a = Archive.open(tmp_path)
    assert a.preset == "s2-scene" and a.band_names == ("B02", "B03", "B04", "B08")
    assert len(a) == (1030 // 64) * (1100 // 64)
    assert a.path_of(0) == tmp_path / "big.tif"


# ---------------------------------------------------------------------------- per-band products
PRODUCTS = {
    "named-tif": lambda root: write_perband(root / "product"),
    "named-tif-res": lambda root: write_perband(root / "product", res_suffix=True),
    "safe-jp2": lambda root: write_safe(root, ".jp2"),
    "safe-tif": lambda root: write_safe(root, ".tif"),
}


@pytest.fixture(params=sorted(PRODUCTS))
def product(request, tmp_path) -> Path:
    root = tmp_path / "archive"
    PRODUCTS[request.param](root)
    return root


def _band_file(root: Path, band: str) -> Path:
    files = sorted(p for p in root.rglob(f"*_{band}*") if f"_{band}" in p.name)
    return sorted(files, key=lambda p: ("R20m" in str(p), "R60m" in str(p)))[0]


@pytest.mark.parametrize("band", ["B02", "B05", "B8A", "B01"])
def test_bands_resampled_like_rasterio(product, band):
    a = Archive.open(product)
    assert len(a) == 16 and len(a.band_names) == 13
    assert a.band_names[:3] == ("B01", "B02", "B03")  # Sentinel-2 order, each band once
    with rasterio.open(_band_file(product, band)) as src:
        whole = src.read(1, out_shape=(256, 256), resampling=Resampling.cubic_spline)
    k = a.band_names.index(band)
    for rel in ("#r000000c000000", "#r000064c000128", "#r000192c000192"):
        i = next(j for j, r in enumerate(a.records) if r.path.endswith(rel))
        r, c = int(rel[2:8]), int(rel[9:15])
        got = a.read_raw(i)[k]
        if band in B10M:
            assert np.array_equal(got, whole[r : r + 64, c : c + 64])
        elif band in B20M:  # what EuroSAT did: cubic spline to 10 m, the same as rasterio's
            assert np.array_equal(got, whole[r : r + 64, c : c + 64])
        else:  # 60 m: 43 px cover 2580 m, the grid 2560 m; windows follow the georeference
            with rasterio.open(_band_file(product, band)) as src:
                win = Window(c / 6, r / 6, 64 / 6, 64 / 6)
                want = src.read(1, window=win, out_shape=(64, 64),
                                resampling=Resampling.cubic_spline)  # fmt: skip
            assert np.array_equal(got, want)


def test_batches_read_as_strips_equal_single_reads(product):
    a = Archive.open(product)
    idx = [0, 1, 2, 3, 5, 15, 9]
    batch = a.read(idx, bands="ms10")
    for j, i in enumerate(idx):
        np.testing.assert_array_equal(batch.pixels[j], a.read([i], bands="ms10").pixels[0])


def test_footprints_are_the_windows_bounds(product):
    a = Archive.open(product)
    tf = Affine(10, 0, X0, 0, -10, Y0)
    for rec in a.records:
        r, c = int(rec.path[-13:-7]), int(rec.path[-6:])
        assert rec.georef.crs == CRS
        (left, bottom), (right, top) = tf @ (c, r + 64), tf @ (c + 64, r)  # transform * window
        np.testing.assert_allclose(rec.georef.bounds, (left, bottom, right, top))
        ring = np.array(rec.georef.footprint_lonlat)
        assert ring.shape == (5, 2) and np.allclose(ring[0], ring[-1])
        lon, lat = rec.georef.center_lonlat
        assert ring[:, 0].min() < lon < ring[:, 0].max() and 52 < lat < 53


def test_overviews(product, demo_archive):
    a = Archive.open(product)
    [(rgb, corners)] = a.overviews(max_side=100)
    assert rgb.dtype == np.uint8 and rgb.shape == (100, 100, 3) and rgb.std() > 0
    assert len(corners) == 4
    (ul, ur, lr, ll) = corners
    assert ul[0] < ur[0] and ll[1] < ul[1] and lr[1] < ur[1]
    assert Archive.open(demo_archive).overviews() == []


# ---------------------------------------------------------------------------- cache
def test_second_open_uses_the_cache_and_a_changed_file_invalidates_it(tmp_path, monkeypatch):
    write_multiband(tmp_path / "scene.tif")
    first = Archive.open(tmp_path, layout="scenes")
    assert not first.cache_hit and first.cache_path is not None
    assert first.cache_path.parent == tmp_path / ".rsgui"
    calls = []
    real = scenes.invalid_fraction
    monkeypatch.setattr(
        scenes, "invalid_fraction", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    second = Archive.open(tmp_path, layout="scenes")
    assert second.cache_hit and calls == []
    assert [r.path for r in second.records] == [r.path for r in first.records]
    assert [r.georef for r in second.records] == [r.georef for r in first.records]
    # the scene is rewritten with a smaller swath gap: the cache no longer holds
    write_multiband(tmp_path / "scene.tif", w=200, seed=3)
    st = os.stat(tmp_path / "scene.tif")
    os.utime(tmp_path / "scene.tif", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = Archive.open(tmp_path, layout="scenes")
    assert not third.cache_hit and calls == [1]
    assert len(third) == 4 * 2  # cols 64 and 128 kept of 0, 64, 128 (200 px wide)


def test_stats_follow_the_scene_file(tmp_path):
    write_multiband(tmp_path / "scene.tif")
    a = Archive.open(tmp_path, layout="scenes")
    st = os.stat(tmp_path / "scene.tif")
    stats = a.tile_stats()
    assert stats.shape == (len(a), 3)
    assert (stats[:, 0] == st.st_size).all() and (stats[:, 1] == st.st_mtime_ns).all()


# ---------------------------------------------------------------------------- queries and chips
@pytest.fixture
def indexed(tmp_path):
    from rsgui.index_store import HashIndex
    from rsgui.progress import drive
    from rsgui.services.indexing import index_job

    root = tmp_path / "archive"
    write_perband(root / "product")
    a = Archive.open(root)
    built = drive(index_job(a, "spectral", tmp_path / "idx", bands="ms10", bits=32))
    return a, HashIndex.load(built.path)


@pytest.mark.parametrize("i", [0, 7, 15])
def test_scene_tile_as_query_finds_itself(indexed, i):
    from rsgui.services.search import QueryTile, search

    a, index = indexed
    assert index.paths == [r.path for r in a.records]
    res = search(index, QueryTile(a.path_of(i), archive_index=i), 5, archive=a)
    zero = [r.path for r in res.rows if r.distance == 0]
    assert str(a.root / a.records[i].path) in zero


@pytest.mark.parametrize("bands", ["all", "ms10", ["B04", "B03", "B02"]])
def test_chip_round_trips_pixels_and_georeference(indexed, tmp_path, bands):
    from rsgui.services.chips import export_chip

    a, _ = indexed
    i = 6
    out = export_chip(a, i, tmp_path / "chip.tif", bands=bands)
    names = a.band_names if bands == "all" else ("B02", "B03", "B04", "B05", "B06", "B07",
                                                 "B08", "B8A", "B11", "B12") if bands == "ms10" \
        else tuple(bands)  # fmt: skip
    raw = a.read_raw(i)
    with rasterio.open(out) as src:
        assert src.descriptions == names and src.crs.to_string() == CRS
        np.testing.assert_allclose(tuple(src.bounds), a.records[i].georef.bounds)
        assert np.array_equal(src.read(), raw[[a.band_names.index(b) for b in names]])
    assert not list(tmp_path.glob(".chip.tif*"))  # written atomically, no temporary left


def test_chip_used_as_a_query_from_elsewhere(indexed, tmp_path):
    from rsgui.services.chips import export_chip
    from rsgui.services.search import search

    a, index = indexed
    chip = export_chip(a, 9, tmp_path / "elsewhere" / "q.tif")
    res = search(index, chip, 3, archive=a)
    assert res.rows[0].distance == 0
    assert str(a.root / a.records[9].path) in [r.path for r in res.rows if r.distance == 0]


def test_chip_command(tmp_path, capsys):
    from rsgui.cli import main

    write_multiband(tmp_path / "arc" / "scene.tif")
    out = tmp_path / "c.tif"
    rec = "scene.tif#r000064c000128"
    assert main(["chip", str(tmp_path / "arc"), rec, "--out", str(out), "--layout", "scenes"]) == 0
    a = Archive.open(tmp_path / "arc", layout="scenes")
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(), a.read_raw(a.find(rec)))
        assert src.nodata == 0
    assert main(["chip", str(tmp_path / "arc"), "nope#r1", "--out", str(out),
                 "--layout", "scenes"]) == 2  # fmt: skip
    assert "no tile 'nope#r1'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- several scenes
def test_several_scenes_and_tiles_of_the_same_bands_form_one_archive(tmp_path, write_tile):
    write_perband(tmp_path / "a", prefix="T33UUP_20170613T101031")
    write_perband(tmp_path / "b", prefix="T33UUQ_20170613T101031")
    bands = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10",
             "B11", "B12"]  # fmt: skip
    write_tile(tmp_path / "tiles" / "t1.tif", descriptions=bands)
    write_tile(tmp_path / "tiles" / "t2.tif", descriptions=bands)
    a = Archive.open(tmp_path)
    assert len(a) == 16 + 16 + 2
    assert a.records[0].path.startswith("a/T33UUP_20170613T101031#")
    assert a.records[16].path.startswith("b/T33UUQ_20170613T101031#")
    assert [r.path for r in a.records[32:]] == ["tiles/t1.tif", "tiles/t2.tif"]
    batch = a.read([0, 20, 32, 33], bands="ms10")
    assert batch.pixels.shape == (4, 10, 64, 64)
    with rasterio.open(tmp_path / "tiles" / "t2.tif") as src:
        want = src.read([bands.index(b) + 1 for b in a.band_names])
    assert np.array_equal(a.read_raw(33), want)
    assert a.path_of(33) == tmp_path / "tiles" / "t2.tif"
    assert a.tile_stats().shape == (34, 3)


MIXED = {
    "scenes-of-other-bands": (
        lambda root, w: (write_multiband(root / "m.tif", h=1100, w=1100),
                         write_raster(root / "p" / "X_B02.tif", _band_data("B02"), 10)),
        "scenes of different band layouts",
    ),
    "patches-and-tiles": (
        lambda root, w: (w(root / "tiles" / "t.tif"), _write_patch(root / "S2A_MSIL2A_1_2")),
        "mixes layouts",
    ),
    "patches-and-scenes": (
        lambda root, w: (write_perband(root / "scene"), _write_patch(root / "S2A_MSIL2A_1_2")),
        "mixes layouts",
    ),
    "unreadable-band-file": (
        lambda root, w: (write_perband(root / "s"),
                         (root / "s" / "T33UUP_20170613T101031_B03.tif").write_bytes(b"II*\0junk")),
        "cannot be read as a scene band",
    ),
}  # fmt: skip


def _write_patch(folder: Path) -> None:
    for band in B10M + B20M:
        write_raster(folder / f"{folder.name}_{band}.tif", _band_data(band)[:, :120, :120], 10)
    (folder / f"{folder.name}_labels_metadata.json").write_text('{"labels": ["Pastures"]}')


@pytest.mark.parametrize("case", sorted(MIXED))
def test_mixed_or_unreadable_layouts_give_one_clear_line(tmp_path, write_tile, case):
    make, words = MIXED[case]
    make(tmp_path, write_tile)
    with pytest.raises(LayoutError) as err:
        Archive.open(tmp_path)
    text = str(err.value)
    assert words in text and "\n" not in text
    assert str(tmp_path) in text


def test_warm_open_is_fast(tmp_path):
    """Not the 29,000-tile bench (bench/scene.py), but the same path: no pixel read warm."""
    write_multiband(tmp_path / "scene.tif", h=1024, w=1024)
    Archive.open(tmp_path, layout="scenes", tile_size=16)
    t0 = time.perf_counter()
    a = Archive.open(tmp_path, layout="scenes", tile_size=16)
    assert a.cache_hit and len(a) > 3000
    assert time.perf_counter() - t0 < 2.0
