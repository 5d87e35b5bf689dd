"""The synthetic demo archive: layout, determinism, class differences, atomic creation, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from rsgui import demo
from rsgui.archive import Archive
from rsgui.bands import EUROSAT_MS_ORDER
from rsgui.cli import main as cli_main


def test_layout_and_georeference(demo_archive):
    # Other tests may have cached an index in the shared fixture's hidden `.rsgui` folder.
    classes = sorted(p.name for p in demo_archive.iterdir() if p.is_dir() and p.name[0] != ".")
    assert classes == list(demo.CLASSES)
    with rasterio.open(demo_archive / "Forest" / "Forest_1.tif") as src:
        assert (src.count, src.height, src.width, src.dtypes[0]) == (13, 64, 64, "uint16")
        assert src.crs.to_epsg() in range(32631, 32635)
        assert src.res == (10.0, 10.0)
        data = src.read()
    assert data.max() <= 4095 and data.min() >= 0
    a = Archive.open(demo_archive, use_cache=False)
    centres = {r.georef.center_lonlat for r in a.records}
    assert len(centres) == len(a)  # every tile at its own position


def _class_mean(a: Archive, cls: str, band: str) -> float:
    idx = np.flatnonzero(a.labels == a.classes.index(cls))
    return float(a.read(idx, [band]).pixels.mean() * 4095)


def test_spectra_differ_like_real_classes(demo_archive):
    a = Archive.open(demo_archive, use_cache=False)
    nir = {c: _class_mean(a, c, "B8A") for c in a.classes}
    assert nir["SeaLake"] < 800 < 2000 < nir["Forest"]
    assert nir["River"] < nir["Forest"]
    assert _class_mean(a, "Forest", "B04") < _class_mean(a, "Industrial", "B04")
    assert _class_mean(a, "Forest", "B10") < 40  # cirrus band stays near zero


@pytest.mark.parametrize(("cls", "other"), [("AnnualCrop", "Pasture"), ("Highway", "Pasture")])
def test_texture_differs(cls, other):
    """Striped fields and roads vary far more across the tile than a pasture does."""
    rng = np.random.default_rng(1)
    sd = {c: np.std(demo.make_tile(c, rng)[EUROSAT_MS_ORDER.index("B08")]) for c in (cls, other)}
    assert sd[cls] > 2 * sd[other]


def test_deterministic(tmp_path):
    a = demo.make_demo_archive(tmp_path / "a", n_per_class=1, size=16, seed=3)
    b = demo.make_demo_archive(tmp_path / "b", n_per_class=1, size=16, seed=3)
    c = demo.make_demo_archive(tmp_path / "c", n_per_class=1, size=16, seed=4)
    f = "River/River_1.tif"
    with rasterio.open(a / f) as x, rasterio.open(b / f) as y, rasterio.open(c / f) as z:
        assert np.array_equal(x.read(), y.read()) and x.transform == y.transform
        assert not np.array_equal(x.read(), z.read())


def test_reuse_and_refuse(tmp_path):
    root = demo.make_demo_archive(tmp_path / "d", n_per_class=1, size=16)
    stamp = (root / "Forest" / "Forest_1.tif").stat().st_mtime_ns
    assert demo.make_demo_archive(root, n_per_class=1, size=16) == root
    assert (root / "Forest" / "Forest_1.tif").stat().st_mtime_ns == stamp
    demo.make_demo_archive(root, n_per_class=2, size=16)  # other settings: rebuilt
    assert len(Archive.open(root)) == 20
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        demo.make_demo_archive(other, n_per_class=1)
    assert (other / "notes.txt").read_text() == "keep me"


def test_no_partial_archive_on_failure(tmp_path, monkeypatch):
    calls = []
    real = demo.write_geotiff

    def failing(*a, **k):
        calls.append(1)
        if len(calls) > 3:
            raise OSError("disk full")
        real(*a, **k)

    monkeypatch.setattr(demo, "write_geotiff", failing)
    with pytest.raises(OSError, match="disk full"):
        demo.make_demo_archive(tmp_path / "d", n_per_class=1, size=16)
    assert list(tmp_path.iterdir()) == []


def test_cli_make_and_info(tmp_path, capsys):
    root = tmp_path / "cli"
    assert cli_main(["make-demo-archive", str(root), "--per-class", "2", "--seed", "1"]) == 0
    assert cli_main(["archive-info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "tiles: 20 of 64x64" in out and "SeaLake: 2" in out and "B8A" in out
    assert "EPSG:3263" in out and "problems: none" in out
    (root / "Forest" / "broken.tif").write_text("x")
    assert cli_main(["archive-info", str(root), "--divisor", "10000"]) == 0
    out = capsys.readouterr().out
    assert "Forest/broken.tif: not a raster file" in out and "/ 10000" in out
    assert cli_main(["archive-info", str(tmp_path / "nope")]) == 2
    assert cli_main(["archive-info", str(root), "--bands-order", "B01,B02"]) == 2
