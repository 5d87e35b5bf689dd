"""JPEG and PNG headers read without GDAL give GDAL's entry, and anything less plain goes to GDAL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from rsgui import image_header as ih
from rsgui import tiff_header as th
from rsgui.archive import Archive

REAL_RGB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eurosat-rgb"


def _gdal(path: Path, monkeypatch) -> dict:
    with monkeypatch.context() as m:
        m.setattr(th, "FAST_TIFF", False)
        with rasterio.Env(**th.GDAL_ENV):
            return th.read_header(path)


def _header_only(entry: dict) -> dict:
    """The entry without the file's content check (added to every header alike)."""
    return {k: v for k, v in entry.items() if k != "check"}


def _direct(path: Path) -> dict | None:
    """The entry read by :mod:`rsgui.image_header`, or None when it hands the file to GDAL."""
    kind = "jpeg" if path.suffix == ".jpg" else "png"
    with open(path, "rb") as f:
        try:
            return ih.read_image_header(f, path.stat().st_size, kind)
        except ih.NeedsGdal:
            return None


def _palette_png(path: Path) -> Path:
    data = np.arange(16 * 16, dtype=np.uint8).reshape(1, 16, 16) % 4
    with rasterio.open(path, "w", driver="PNG", dtype="uint8", count=1, height=16, width=16) as dst:
        dst.write(data)
        dst.write_colormap(1, {0: (255, 0, 0, 255), 1: (0, 255, 0, 255), 2: (0, 0, 255, 255),
                               3: (9, 9, 9, 255)})  # fmt: skip
    return path


def _with_big_app_segment(path: Path) -> Path:
    """The JPEG with a 20 kB APP1 segment (as EXIF or an ICC profile) before its frame header."""
    raw = path.read_bytes()
    n = 20_000
    app1 = b"\xff\xe1" + (n + 2).to_bytes(2, "big") + b"Exif\0\0" + b"\x11" * (n - 6)
    out = path.with_name("exif_" + path.name)
    out.write_bytes(raw[:2] + app1 + raw[2:])
    return out


# (file name, write_tile arguments, read directly?)
CASES = [
    ("rgb.jpg", {"bands": 3, "driver": "JPEG"}, True),
    ("gray.jpg", {"bands": 1, "driver": "JPEG"}, True),
    ("rgb_progressive.jpg", {"bands": 3, "driver": "JPEG", "PROGRESSIVE": "ON"}, True),
    ("gray_progressive.jpg", {"bands": 1, "driver": "JPEG", "PROGRESSIVE": "ON"}, True),
    ("odd_size.jpg", {"bands": 3, "driver": "JPEG", "size": (37, 61)}, True),
    ("rgb.png", {"bands": 3, "driver": "PNG"}, True),
    ("gray.png", {"bands": 1, "driver": "PNG"}, True),
    ("gray_alpha.png", {"bands": 2, "driver": "PNG"}, True),
    ("rgba.png", {"bands": 4, "driver": "PNG"}, True),
    ("rgb16.png", {"bands": 3, "driver": "PNG", "dtype": "uint16"}, True),
    ("gray16.png", {"bands": 1, "driver": "PNG", "dtype": "uint16"}, True),
    ("nodata.png", {"bands": 3, "driver": "PNG", "nodata": 7}, False),  # tRNS: GDAL's nodata
    ("scene.png", {"bands": 1, "driver": "PNG", "size": (8, 1100)}, False),  # GDAL words it
]


@pytest.mark.parametrize(("name", "kwargs", "direct"), CASES, ids=[c[0] for c in CASES])
def test_header_equals_rasterio(name, kwargs, direct, tmp_path, write_tile, monkeypatch):
    kwargs = {"size": 24, "dtype": "uint8", "crs": False, **kwargs}
    p = write_tile(tmp_path / name, **kwargs)
    if "progressive" in name:
        assert b"\xff\xc2" in p.read_bytes()  # SOF2: the file is progressive indeed
    got = _direct(p)
    assert (got is not None) == direct
    ref = _gdal(p, monkeypatch)
    assert th.read_header(p) == ref
    if direct:
        assert got == _header_only(ref) and "problem" not in ref


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("damage", ["palette", "truncated", "trailing", "exif", "empty_tail"])
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_less_plain_files(damage, suffix, tmp_path, write_tile, monkeypatch):
    """Palette PNGs and files without their end marker go to GDAL (which reports a truncated
    one); a large segment before a JPEG's frame header is read past."""
    driver = "JPEG" if suffix == ".jpg" else "PNG"
    p = write_tile(tmp_path / f"t{suffix}", bands=3, size=32, dtype="uint8", crs=False,
                   driver=driver)  # fmt: skip
    direct = False
    if damage == "palette":
        if suffix == ".jpg":
            pytest.skip("JPEGs have no palette")
        p = _palette_png(tmp_path / "palette.png")
    elif damage == "truncated":
        raw = p.read_bytes()
        p.write_bytes(raw[: len(raw) * 2 // 3])
    elif damage == "trailing":
        p.write_bytes(p.read_bytes() + b"\0" * 10)
    elif damage == "exif":
        if suffix == ".png":
            pytest.skip("EXIF segments are a JPEG matter")
        p, direct = _with_big_app_segment(p), True
    elif damage == "empty_tail":
        p.write_bytes(p.read_bytes()[:40])
    ref = _gdal(p, monkeypatch)
    assert (_direct(p) is not None) == direct
    assert th.read_header(p) == ref
    if damage == "empty_tail" or (damage == "truncated" and suffix == ".jpg"):
        assert "problem" in ref  # GDAL reads the rest of a truncated PNG as it can
    if damage == "palette":
        assert ref["count"] == 1 and "problem" not in ref


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00", b"\x89PNG\r\n"])
def test_short_files_never_raise(data, tmp_path):
    p = tmp_path / ("x.png" if data.startswith(b"\x89") else "x.jpg")
    p.write_bytes(data)
    entry = th.read_header(p)
    assert "problem" in entry


def test_jpeg_archive_reads_pixels_as_before(tmp_path, write_tile):
    for cls in ("Forest", "River"):
        for i in (1, 2, 10):
            write_tile(tmp_path / cls / f"{cls}_{i}.jpg", bands=3, size=16, dtype="uint8",
                       crs=False, driver="JPEG")  # fmt: skip
    a = Archive.open(tmp_path, use_cache=False)
    assert len(a) == 6 and not a.problems and a.preset == "eurosat-rgb"
    with rasterio.open(a.path_of(3)) as src:
        ref = src.read()
    assert np.allclose(a.read([3]).pixels[0] * 255, ref, atol=1e-3)
    assert a.crs_counts() == {"none": 6} and "CRS: none (6)" in a.report()


def test_no_warning_on_stderr_for_an_archive_without_crs(tmp_path, write_tile):
    """``rsgui-cli archive-info`` and a read of tiles without georeference print no library
    warning (rasterio's NotGeoreferencedWarning); the report says "CRS: none (N)" instead.
    Enough files for the header threads to run (where a per-call warning filter leaked)."""
    for cls in ("A", "B"):
        for i in range(150):  # compressed: read through rasterio, in 64-file chunks
            write_tile(tmp_path / cls / f"{cls}_{i}.tif", bands=1, size=8, dtype="uint8",
                       crs=False, compress="deflate")  # fmt: skip
    code = (
        "import sys; from rsgui.cli import main; from rsgui.archive import Archive\n"
        f"rc = main(['archive-info', {str(tmp_path)!r}, '--no-cache'])\n"
        f"a = Archive.open({str(tmp_path)!r}); a.read(range(len(a)))\n"
        "sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "CRS: none (300)" in done.stdout
    assert "Warning" not in done.stderr and "warn" not in done.stderr.lower(), done.stderr


@pytest.mark.realdata
def test_real_rgb_headers_equal_rasterio(monkeypatch):
    """On the real EuroSAT RGB JPEGs (a sample per class), the direct header is GDAL's."""
    if not REAL_RGB.is_dir():
        pytest.skip("real data ../shared/data/eurosat-rgb not present")
    files = sorted(REAL_RGB.glob("*/*_1?.jpg"))[:60]
    assert files
    for p in files:
        got = _direct(p)
        assert got is not None and got == _header_only(_gdal(p, monkeypatch)), p
        assert got["count"] == 3 and (got["height"], got["width"]) == (64, 64)


@pytest.mark.realdata
def test_real_rgb_archive_opens_cold_with_no_warning(tmp_path):
    """The 26,000 real EuroSAT RGB JPEGs open with no manifest (a fresh cache folder; the data
    folder itself is read-only) without a problem or a warning, every tile counted as
    without CRS in the report."""
    if not REAL_RGB.is_dir():
        pytest.skip("real data ../shared/data/eurosat-rgb not present")
    code = (
        "from rsgui.cli import main; import sys\n"
        f"sys.exit(main(['archive-info', {str(REAL_RGB.resolve())!r}]))"
    )
    env = {**os.environ, "RSGUI_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                          text=True, timeout=600, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    n = int(done.stdout.split("tiles: ", 1)[1].split()[0])
    assert n >= 26_000 and f"CRS: none ({n})" in done.stdout and "problems: none" in done.stdout
    assert "Warning" not in done.stderr, done.stderr[-500:]
