"""Archive scanning, band order, normalisation, labels, manifest cache, georeference, bad input."""

from __future__ import annotations

import builtins
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from rsgui import manifest as mf
from rsgui import tiff_header as th
from rsgui.archive import Archive, read_tile_file
from rsgui.bands import EUROSAT_MS_ORDER, S2_BANDS, Normalisation
from rsgui.errors import MissingBandsError, TileReadError
from rsgui.tiles import GeoRef

MS10 = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def ramp(bands: int = 13, size: int = 8) -> np.ndarray:
    """Plane i holds the value i * 100, so a value names the file position it came from."""
    return np.stack([np.full((size, size), i * 100, np.uint16) for i in range(bands)])


@pytest.fixture
def small(tmp_path, write_tile):
    """Three good 13-band 16x16 tiles in two class folders."""
    root = tmp_path / "arch"
    for rel in ("A/A_1.tif", "A/A_2.tif", "B/B_1.tif"):
        write_tile(root / rel, size=16)
    return root


class OpenCounter:
    """Counts header reads and rasterio.open calls (a warm open must make none)."""

    def __init__(self, monkeypatch):
        self.n = 0  # headers read
        self.gdal = 0  # rasterio.open calls
        real_open, real_header = rasterio.open, th.read_header

        def counting_open(*a, **k):
            self.gdal += 1
            return real_open(*a, **k)

        def counting_header(*a, **k):
            self.n += 1
            return real_header(*a, **k)

        monkeypatch.setattr(rasterio, "open", counting_open)
        monkeypatch.setattr(th, "read_header", counting_header)


# --------------------------------------------------------------------------- basic layout
def test_demo_archive_opens(demo_archive):
    a = Archive.open(demo_archive, use_cache=False)
    assert a.preset == "eurosat-ms"
    assert a.band_names == EUROSAT_MS_ORDER and a.band_names[12] == "B8A"
    assert len(a) == 60 and a.tile_shape == (64, 64)
    assert len(a.classes) == 10 and a.classes[0] == "AnnualCrop"
    assert [r.index for r in a.records] == list(range(60))
    assert [r.path for r in a.records] == sorted(r.path for r in a.records)
    assert np.bincount(a.labels).tolist() == [6] * 10
    assert all(a.classes[lab] == r.label for lab, r in zip(a.labels, a.records, strict=True))
    assert a.problems == []


def test_read_shapes_and_batches(small):
    a = Archive.open(small)
    b = a.read([2, 0], "ms10")
    assert b.pixels.shape == (2, 10, 16, 16) and b.pixels.dtype == np.float32
    assert b.band_names == MS10 and [r.path for r in b.records] == ["B/B_1.tif", "A/A_1.tif"]
    assert a.read(1).pixels.shape == (1, 13, 16, 16)
    batches = list(a.iter_batches("rgb", batch_size=2))
    assert [len(x.records) for x in batches] == [2, 1]
    assert batches[0].band_names == ("B04", "B03", "B02")
    raw = a.read_raw(0)
    assert raw.dtype == np.uint16 and raw.shape == (13, 16, 16)
    assert np.allclose(a.read(0).pixels[0], np.minimum(raw, 4095) / 4095)
    raw[0, 0, 0] = 1  # the caller owns it
    with pytest.raises(MissingBandsError):
        a.read([0], ["B02", "B99"])


def test_find(small):
    a = Archive.open(small)
    assert a.find("B/B_1.tif") == 2
    assert a.find(small / "A" / "A_2.tif") == 1
    assert a.find(small / "nope.tif") is None
    assert a.find("/elsewhere/A/A_1.tif") is None


# --------------------------------------------------------------------------- bad input
def _truncate(p: Path, n: int | None = None) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: (n if n is not None else len(data) // 2)])


BAD_CASES = {
    "truncated-pixels": ("A/bad.tif", lambda p, w: (w(p, size=16), _truncate(p)), "truncated"),
    "truncated-header": ("A/bad.tif", lambda p, w: (w(p, size=16), _truncate(p, 40)), "corrupt"),
    "text-as-tif": ("A/bad.tif", lambda p, w: p.write_text("hello"), "not a raster file"),
    "empty": ("A/bad.tif", lambda p, w: p.write_bytes(b""), "empty file"),
    "png-as-tif": (
        "A/bad.tif",
        lambda p, w: (
            w(p.with_suffix(".png"), 3, 16, "uint8", crs=False, driver="PNG"),
            p.with_suffix(".png").rename(p),
        ),  # fmt: skip
        "PNG image",
    ),
    "png-in-tif-archive": (
        "A/bad.png",
        lambda p, w: w(p, 3, 16, "uint8", crs=False, driver="PNG"),
        "in an archive of",
    ),
    "folder-named-tif": ("A/bad.tif", lambda p, w: p.mkdir(), "folder"),
    "other-size": ("A/bad.tif", lambda p, w: w(p, size=32), "32x32 pixels"),
    "other-band-count": ("A/bad.tif", lambda p, w: w(p, bands=4, size=16), "has 4 bands"),
    "scene": (
        "A/bad.tif",
        lambda p, w: w(p, bands=1, size=(1100, 1030), dtype="uint8", value=1),
        "a scene, not a tile",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_skipped(case, small, write_tile):
    rel, make, reason = BAD_CASES[case]
    make(small / rel, write_tile)
    a = Archive.open(small)
    assert len(a) == 3
    assert [p.path for p in a.problems] == [rel]
    assert reason in a.problems[0].reason
    assert rel in a.report() and reason in a.report()
    # the problem is cached too: a warm open gives the same list
    assert [(p.path, p.reason) for p in Archive.open(small).problems] == [
        (p.path, p.reason) for p in a.problems
    ]


def test_unreadable_file_is_skipped(small, monkeypatch):
    bad = small / "A" / "A_2.tif"

    def guarded(file, *a, **k):
        if Path(file) == bad:
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *a, **k)

    monkeypatch.setattr(th, "open", guarded, raising=False)
    a = Archive.open(small)
    assert [p.path for p in a.problems] == ["A/A_2.tif"]
    assert "permission denied" in a.problems[0].reason
    monkeypatch.undo()  # access restored (chmod leaves mtime alone): read again, not cached
    assert len(Archive.open(small)) == 3


@pytest.mark.parametrize("damage", ["garbage", "deleted", "resized"])
def test_file_broken_after_open_raises_naming_it(damage, small, write_tile):
    a = Archive.open(small)
    target = small / "A" / "A_2.tif"
    if damage == "garbage":
        target.write_bytes(b"\0" * 100)
    elif damage == "deleted":
        target.unlink()
    else:
        write_tile(target, size=32)
    with pytest.raises(TileReadError) as err:
        a.read([0, 1], "ms10")
    assert "A_2.tif" in str(err.value) and err.value.path.endswith("A_2.tif")
    assert a.read([0, 2]).pixels.shape[0] == 2  # the others still read


# --------------------------------------------------------------------------- read_tile_file
def test_read_tile_file_ok(tmp_path, write_tile):
    p = write_tile(tmp_path / "q.tif", value=ramp(13, 8))
    b = read_tile_file(p, bands="ms10")
    assert b.band_names == MS10 and b.pixels.shape == (1, 10, 8, 8)
    expected = [EUROSAT_MS_ORDER.index(n) * 100 / 4095 for n in MS10]
    assert np.allclose(b.pixels[0, :, 0, 0], expected)
    assert b.records[0].georef.crs == "EPSG:32631"


@pytest.mark.parametrize(
    ("make", "kwargs", "needle"),
    [
        (lambda p, w: p.write_text("not an image"), {}, "not a raster file"),
        (lambda p, w: w(p, bands=4), {"bands": "ms10"}, "has 4 bands"),
        (lambda p, w: w(p, bands=4), {"bands": "ms10"}, "needs B02"),
        (lambda p, w: w(p, size=32), {"expected_shape": (64, 64)}, "index expects tiles of 64x64"),
        (lambda p, w: w(p), {"band_names": "B02,B03"}, "band order given names 2"),
        (lambda p, w: p.mkdir(), {}, "folder"),
        (lambda p, w: None, {}, "not found"),
    ],
)
def test_read_tile_file_errors(make, kwargs, needle, tmp_path, write_tile):
    p = tmp_path / "q.tif"
    make(p, write_tile)
    with pytest.raises(TileReadError) as err:
        read_tile_file(p, **kwargs)
    assert str(err.value).startswith(str(p) + ": ")
    assert needle in str(err.value)


# --------------------------------------------------------------------------- band order
def test_ms10_picks_the_right_planes(tmp_path, write_tile):
    for rel in ("A/a.tif", "B/b.tif"):
        write_tile(tmp_path / rel, value=ramp(13, 8), size=8)
    a = Archive.open(tmp_path)
    b = a.read([0, 1], "ms10")
    got = np.rint(b.pixels[:, :, 0, 0] * 4095).astype(int)
    want = [EUROSAT_MS_ORDER.index(n) * 100 for n in MS10]
    assert got.tolist() == [want, want]
    assert want[MS10.index("B8A")] == 1200  # B8A is the last plane of a EuroSAT MS file


def test_descriptions_in_another_order(tmp_path, write_tile):
    """A file stating its bands in canonical order (B8A at plane 8) is read by name."""
    write_tile(tmp_path / "A/a.tif", value=ramp(13, 8), size=8)
    write_tile(tmp_path / "A/b.tif", value=ramp(13, 8), size=8)
    write_tile(tmp_path / "A/c.tif", value=ramp(13, 8), size=8, descriptions=S2_BANDS)
    a = Archive.open(tmp_path)
    assert a.band_names == EUROSAT_MS_ORDER and a.problems == []
    b8a = np.rint(a.read([0, 1, 2], ["B8A", "B09"]).pixels[:, :, 0, 0] * 4095).astype(int)
    assert b8a.tolist() == [[1200, 800], [1200, 800], [800, 900]]
    raw = a.read_raw(2)  # in the archive's order
    assert raw[12, 0, 0] == 800 and raw[8, 0, 0] == 900


@pytest.mark.parametrize(
    ("descriptions", "expected"),
    [
        (["B2", "B3", "B4", "B8A"], ("B02", "B03", "B04", "B8A")),
        (["b02", "b03", "b04", "b8a"], ("B02", "B03", "B04", "B8A")),
        (["B02 blue", "B03 green", "B04 red", "B8a nir"], ("B02", "B03", "B04", "B8A")),
        (["B8A", "B04", "B03", "B02"], ("B8A", "B04", "B03", "B02")),
    ],
)
def test_band_names_from_descriptions(descriptions, expected, tmp_path, write_tile):
    p = write_tile(tmp_path / "t.tif", bands=4, size=8, value=ramp(4, 8), descriptions=descriptions)
    a = Archive.open(tmp_path)
    assert a.preset == "geotiff" and a.band_names == expected and a.band_source == "file"
    b = read_tile_file(p, bands="rgb")
    assert np.allclose(b.pixels[0, :, 0, 0] * 4095, [expected.index(n) * 100 for n in b.band_names])


@pytest.mark.parametrize("bad", [["B02", "B02", "B03", "B04"], ["red", "green", "blue", "nir"]])
def test_unusable_descriptions_fall_back(bad, tmp_path, write_tile):
    write_tile(tmp_path / "t.tif", bands=4, size=8, descriptions=bad)
    a = Archive.open(tmp_path, band_names="B02,B03,B04,B08")
    assert a.band_names == ("B02", "B03", "B04", "B08") and a.band_source == "setting"


def test_user_band_order(tmp_path, write_tile):
    write_tile(tmp_path / "t1.tif", value=ramp(13, 8), size=8)
    a = Archive.open(tmp_path, preset="geotiff", band_names=list(S2_BANDS))
    assert a.band_names == S2_BANDS
    assert round(float(a.read(0, ["B8A"]).pixels[0, 0, 0, 0]) * 4095) == 800
    with pytest.raises(ValueError, match="names 3 bands"):
        Archive.open(tmp_path, band_names="B04,B03,B02")
    with pytest.raises(ValueError, match="not a Sentinel-2 band"):
        Archive.open(tmp_path, band_names="B04,B03,XX")


def test_unnamed_bands_get_generic_names(tmp_path, write_tile):
    write_tile(tmp_path / "t.tif", bands=5, size=8)
    a = Archive.open(tmp_path)
    assert a.band_names == ("band1", "band2", "band3", "band4", "band5")
    with pytest.raises(MissingBandsError):
        a.read(0, "rgb")


# --------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize(
    ("norm", "value", "expected"),
    [
        (None, 2000, 2000 / 4095),
        (None, 5000, 1.0),
        (Normalisation(10000, 10000), 5000, 0.5),
        (Normalisation(3000, 4095), 3500, 3000 / 4095),
    ],
)
def test_normalisation(norm, value, expected, tmp_path, write_tile):
    write_tile(tmp_path / "A/a.tif", value=value, size=8)
    a = Archive.open(tmp_path, normalisation=norm)
    assert np.allclose(a.read(0).pixels, expected, atol=1e-6)
    if norm is not None:
        assert a.normalisation == norm


def test_rgb_archive(tmp_path, write_tile):
    for c in ("Forest", "SeaLake"):
        for n in (1, 2):
            write_tile(tmp_path / c / f"{c}_{n}.jpg", 3, 16, "uint8", 200, crs=False, driver="JPEG")
    a = Archive.open(tmp_path)
    assert a.preset == "eurosat-rgb" and a.band_names == ("B04", "B03", "B02")
    assert a.classes == ("Forest", "SeaLake") and len(a) == 4
    assert a.normalisation == Normalisation(255, 255)
    px = a.read([0], "rgb").pixels
    assert 0.7 < px.mean() < 0.9 and a.records[0].georef == GeoRef()
    with pytest.raises(MissingBandsError):
        a.read([0], "ms10")


# --------------------------------------------------------------------------- labels
@pytest.mark.parametrize(
    ("rels", "preset", "labels"),
    [
        (["X/1.tif", "Y/2.tif"], None, ["X", "Y"]),
        (["1.tif", "2.tif"], None, [None, None]),
        (["a/b/1.tif", "a/c/2.tif"], None, [None, None]),
        (["X/1.tif", "2.tif"], "geotiff", [None, None]),
        (["2.tif", "X/1.tif"], "eurosat-ms", [None, "X"]),
        (["X/1.tif", "Y/2.tif"], "geotiff", ["X", "Y"]),
    ],
)
def test_labels(rels, preset, labels, tmp_path, write_tile):
    for r in rels:
        write_tile(tmp_path / r, size=8)
    a = Archive.open(tmp_path, preset=preset)
    got = {r.path: r.label for r in a.records}
    assert [got[r] for r in rels] == labels
    assert a.classes == tuple(sorted({x for x in labels if x}))
    assert [a.classes[i] if i >= 0 else None for i in a.labels] == [r.label for r in a.records]


# --------------------------------------------------------------------------- manifest cache
def test_warm_open_reads_no_header(small, monkeypatch):
    (small / "A" / "junk.tif").write_text("junk")
    cold = Archive.open(small)
    assert (small / ".rsgui" / "manifest.json").is_file() and not cold.cache_hit
    counter = OpenCounter(monkeypatch)
    warm = Archive.open(small)
    assert counter.n == 0 and counter.gdal == 0 and warm.cache_hit
    assert warm.records == cold.records and warm.problems == cold.problems
    assert warm.band_names == cold.band_names and warm.classes == cold.classes


@pytest.mark.parametrize("change", ["modified", "added", "removed"])
def test_cache_invalidation(change, small, write_tile, monkeypatch):
    Archive.open(small)
    target = small / "B" / ("B_9.tif" if change == "added" else "B_1.tif")
    if change == "removed":
        target.unlink()
    else:
        write_tile(target, size=16, value=7)
        st = target.stat()
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000_000))
    counter = OpenCounter(monkeypatch)
    a = Archive.open(small)
    assert counter.n == (0 if change == "removed" else 1)
    assert len(a) == {"modified": 3, "added": 4, "removed": 2}[change]
    if change != "removed":
        assert np.allclose(a.read(a.find(target)).pixels, 7 / 4095)
    counter.n = 0
    Archive.open(small)
    assert counter.n == 0


@pytest.mark.parametrize("how", ["writes-refused", "cache-folder-blocked", "chmod-555"])
def test_read_only_archive_uses_user_cache(how, small, tmp_path, monkeypatch):
    cache_home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    if how == "writes-refused":  # tests run as root: chmod would not stop the writes
        real_save = mf._save

        def refuse_in_archive(path, manifest):
            if small.resolve() in Path(path).resolve().parents:
                raise PermissionError(13, "Read-only file system", str(path))
            real_save(path, manifest)

        monkeypatch.setattr(mf, "_save", refuse_in_archive)
    elif how == "chmod-555":  # honoured even by root, who could still write there
        small.chmod(0o555)
    else:
        (small / ".rsgui").write_text("a file where the cache folder would go")
    a = Archive.open(small)
    assert a.cache_path is not None and cache_home in a.cache_path.parents
    assert a.cache_path.is_file() and a.cache_path.with_suffix(".npz").is_file()
    assert not (small / ".rsgui").is_dir()
    counter = OpenCounter(monkeypatch)
    assert len(Archive.open(small)) == 3 and counter.n == 0
    small.chmod(0o755)


def test_stale_copy_in_read_only_archive(small, tmp_path, write_tile, monkeypatch):
    """A stale cache left in an archive that became read-only: the user copy takes over and,
    once it matches, nothing is read or rewritten."""
    Archive.open(small)  # cache in the archive
    write_tile(small / "A" / "A_3.tif", size=16)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real_save = mf._save
    saved = []

    def refuse_in_archive(path, manifest):
        if small.resolve() in Path(path).resolve().parents:
            raise PermissionError(13, "Read-only file system", str(path))
        saved.append(path)
        real_save(path, manifest)

    monkeypatch.setattr(mf, "_save", refuse_in_archive)
    counter = OpenCounter(monkeypatch)
    assert len(Archive.open(small)) == 4 and counter.n == 1 and len(saved) == 1
    again = Archive.open(small)
    assert len(again) == 4 and counter.n == 1 and len(saved) == 1
    assert again.cache_path == saved[0]


@pytest.mark.parametrize("damage", ["garbage-json", "npz-missing", "other-write"])
def test_damaged_cache_is_ignored(damage, small, monkeypatch):
    first = Archive.open(small)
    path = first.cache_path
    if damage == "garbage-json":
        path.write_text("{not json")
    elif damage == "npz-missing":
        path.with_suffix(".npz").unlink()
    else:  # the JSON half of another write: tokens differ
        meta = json.loads(path.read_text())
        meta["token"] = "0" * 32
        path.write_text(json.dumps(meta))
    counter = OpenCounter(monkeypatch)
    a = Archive.open(small)
    assert counter.n == 3 and a.records == first.records
    counter.n = 0
    Archive.open(small)
    assert counter.n == 0  # rewritten


def test_no_cache_option(small):
    Archive.open(small, use_cache=False)
    assert not (small / ".rsgui").exists()


def test_progress_reports_to_total(small):
    calls = []
    Archive.open(small, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (3, 3)
    calls.clear()
    Archive.open(small, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(3, 3)]


def test_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("no tiles here")
    a = Archive.open(tmp_path)
    assert len(a) == 0 and a.classes == () and a.labels.shape == (0,)
    assert "tiles: 0" in a.report() and list(a.iter_batches()) == []


def test_preset_that_does_not_fit(tmp_path, write_tile):
    write_tile(tmp_path / "A/a.tif", bands=4, size=8)
    a = Archive.open(tmp_path, preset="eurosat-ms")
    assert len(a) == 0 and a.problems[0].reason == "has 4 bands but preset eurosat-ms names 13"


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        Archive.open(tmp_path / "nope")
    with pytest.raises(ValueError, match="unknown preset"):
        Archive.open(tmp_path, preset="nope")


# --------------------------------------------------------------------------- georeference
def test_georeference_of_known_tile(tmp_path, write_tile):
    # UTM 31N: easting 500 000 is the 3 degree E central meridian
    write_tile(tmp_path / "A/a.tif", size=64, crs=32631, origin=(499_680.0, 5_000_320.0))
    write_tile(tmp_path / "A/b.tif", size=64, crs=False)
    a = Archive.open(tmp_path)
    g = a.records[0].georef
    assert g.crs == "EPSG:32631"
    assert g.bounds == pytest.approx((499_680.0, 4_999_680.0, 500_320.0, 5_000_320.0))
    lon, lat = g.center_lonlat
    assert lon == pytest.approx(3.0, abs=1e-6)
    # northing 5 000 000 m / k0 0.9996 = 5 002 001 m of meridian arc; 45 deg is at 4 984 944 m
    # and a degree there is 111 132 m long: 45 + 17 057 / 111 132 = 45.1535
    assert lat == pytest.approx(45.1535, abs=1e-3)
    ring = g.footprint_lonlat
    assert len(ring) == 5 and ring[0] == ring[-1]
    assert min(p[0] for p in ring) < lon < max(p[0] for p in ring)
    assert a.records[1].georef == GeoRef()


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_subset(real_archive, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = Archive.open(real_archive)
    assert len(a) == 311 and len(a.classes) == 10 and a.problems == []
    if not mf.archive_writable(real_archive):  # shared read-only (r-x): even root leaves it be
        assert tmp_path in a.cache_path.parents
        assert not (real_archive / ".rsgui" / "manifest.json").exists()
    assert a.preset == "eurosat-ms" and a.band_names[12] == "B8A"
    raw = np.stack([a.read_raw(i) for i in (0, 100, 200, 300)]).astype(np.float64)
    means = raw.mean(axis=(0, 2, 3))
    assert means[12] > 10 * means[9]  # B8A (narrow NIR) vs B10 (cirrus)
    assert a.records[0].georef.crs.startswith("EPSG:326")


def test_copy_of_archive_keeps_cache_valid(small, tmp_path, monkeypatch):
    """The manifest holds relative paths, so a copied archive (same mtimes) opens warm."""
    Archive.open(small)
    copy = tmp_path / "copy"
    shutil.copytree(small, copy, copy_function=shutil.copy2)
    counter = OpenCounter(monkeypatch)
    assert len(Archive.open(copy)) == 3 and counter.n == 0


# --------------------------------------------------------------------------- plain GeoTIFF fast path
def _gdal_header(path: Path, monkeypatch) -> dict:
    with monkeypatch.context() as m:
        m.setattr(th, "FAST_TIFF", False)
        with rasterio.Env(**th.GDAL_ENV):
            return th.read_header(path)


@pytest.mark.parametrize(
    ("kwargs", "plain"),
    [
        ({}, True),
        ({"dtype": "uint8", "bands": 3}, True),
        ({"dtype": "int16", "interleave": "band"}, True),
        ({"dtype": "float32", "bands": 2, "crs": 32733}, True),
        ({"bands": 2, "crs": 4326}, False),  # geographic keys carry ellipsoid values: GDAL
        ({"crs": False, "descriptions": [f"B{i:02d} (band {i})" for i in range(1, 14)]}, True),
        ({"descriptions": [f"B{i:02d} & <x>" for i in range(1, 14)]}, False),  # XML escapes
        ({"ENDIANNESS": "BIG", "bands": 4}, True),
        ({"tiled": True, "blockxsize": 16, "blockysize": 16}, False),
        ({"compress": "deflate"}, False),
    ],
)
@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_plain_tiff_header_matches_gdal(kwargs, plain, tmp_path, write_tile, monkeypatch):
    p = write_tile(tmp_path / "t.tif", size=(24, 20), **kwargs)
    fast = th.read_header(p)
    assert ("raw" in fast) == plain
    assert {k: v for k, v in fast.items() if k != "raw"} == _gdal_header(p, monkeypatch)
    with rasterio.open(p) as src:
        ref = src.read([src.count, 1])
    if plain:
        got = th.read_raw_pixels(str(p), fast, [fast["count"], 1])
        assert got.dtype == ref.dtype and np.array_equal(got, ref)
    b = read_tile_file(p, normalisation=Normalisation(1e9, 1.0))  # file values as float
    assert np.array_equal(b.pixels[0, [-1, 0]], ref.astype(np.float32))


@pytest.mark.parametrize("fast", [True, False], ids=["plain", "gdal"])
def test_both_readers_give_the_same_archive(fast, tmp_path, write_tile, monkeypatch):
    monkeypatch.setattr(th, "FAST_TIFF", fast)
    write_tile(tmp_path / "A/a.tif", value=ramp(13, 8), size=8)
    write_tile(tmp_path / "A/b.tif", value=ramp(13, 8), size=8, descriptions=S2_BANDS)
    (tmp_path / "A/c.tif").write_bytes(b"II*\x00" + b"\x00" * 50)
    a = Archive.open(tmp_path, use_cache=False)
    assert [p.path for p in a.problems] == ["A/c.tif"]
    b8a = np.rint(a.read([0, 1], ["B8A"]).pixels[:, 0, 0, 0] * 4095).tolist()
    assert b8a == [1200, 800]
    assert a.records[0].georef.crs == "EPSG:32631"


def test_query_jpeg_and_unplaced(tmp_path, write_tile):
    p = write_tile(tmp_path / "q.jpg", 3, 16, "uint8", 255, crs=False, driver="JPEG")
    b = read_tile_file(p, bands="rgb")
    assert b.band_names == ("B04", "B03", "B02") and np.allclose(b.pixels, 1.0, atol=0.02)
    assert b.records[0].georef == GeoRef() and b.records[0].path == p.resolve().as_posix()


def test_lonlat_many_tolerates_bad_crs():
    from rsgui.geo import lonlat_many

    out = lonlat_many([("EPSG:32631", (500_000, 0, 500_010, 10)), ("nonsense", (0, 0, 1, 1)),
                       (None, None)])  # fmt: skip
    assert out[0]["center"][0] == pytest.approx(3.0, abs=1e-4) and out[1] is None is out[2]
