"""Deciding an archive folder's layout from its listing (rsgui.layouts.detect)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from rsgui import layouts
from rsgui import tiff_header as th
from rsgui.layouts import LayoutError, detect
from rsgui.listing import list_files

rasterio = pytest.importorskip("rasterio")


def _listing(root: Path):
    return list_files(root, layouts.LISTED_EXTENSIONS)


def _touch(root: Path, rels: list[str]) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"II*\0")


def test_a_tile_folder_opens_at_most_one_file(tmp_path, monkeypatch):
    """27,000 EuroSAT tiles: only the largest file's first IFD may be read."""
    listing = [(f"C{k % 10}/C{k % 10}_{k}.tif", 107_244, 1, False) for k in range(27_000)]
    calls = []
    monkeypatch.setattr(th, "raster_size", lambda p: calls.append(p) or (64, 64))
    t0 = time.perf_counter()
    found = detect(tmp_path, listing)
    elapsed = time.perf_counter() - t0
    assert found.kind == "tiles" and found.tile_files is listing
    assert len(calls) == 1
    assert elapsed < 0.25  # a few milliseconds alone; the machine is shared


def test_a_big_geotiff_is_a_scene(tmp_path, write_tile):
    write_tile(tmp_path / "A" / "t1.tif")
    write_tile(tmp_path / "big.tif", bands=1, size=(1100, 1030), dtype="uint8", value=1)
    found = detect(tmp_path, _listing(tmp_path))
    assert found.kind == "scenes"
    assert [s.name for s in found.scenes] == ["big.tif"] and found.scenes[0].multiband
    assert [f[0] for f in found.tile_files] == ["A/t1.tif"]


@pytest.mark.parametrize("size", [(1025, 10), (10, 1025), (1024, 1024)])
def test_raster_size_reads_the_first_ifd(tmp_path, write_tile, size):
    p = write_tile(tmp_path / "x.tif", bands=1, size=size, dtype="uint8", value=1)
    h, w = size
    assert th.raster_size(p) == (w, h)
    big = write_tile(tmp_path / "b.tif", bands=1, size=size, dtype="uint8", value=1,
                     BIGTIFF="YES")  # fmt: skip
    assert th.raster_size(big) == (w, h)
    assert th.raster_size(tmp_path / "none.tif") is None


def test_safe_takes_each_band_once_at_its_finest_resolution(tmp_path):
    img = "P.SAFE/GRANULE/L2A_T33UUP/IMG_DATA"
    rels = [f"{img}/R10m/T_B02_10m.jp2", f"{img}/R10m/T_TCI_10m.jp2", f"{img}/R20m/T_B02_20m.jp2",
            f"{img}/R20m/T_B05_20m.jp2", f"{img}/R60m/T_B05_60m.jp2", f"{img}/R60m/T_B01_60m.jp2",
            "P.SAFE/GRANULE/L2A_T33UUP/QI_DATA/MSK_CLDPRB_20m.jp2"]  # fmt: skip
    _touch(tmp_path, rels)
    found = detect(tmp_path, _listing(tmp_path))
    assert found.kind == "scenes" and found.problems == []
    [scene] = found.scenes
    assert scene.name == "P.SAFE"
    assert {b: rel for b, rel, _ in scene.files} == {
        "B01": f"{img}/R60m/T_B01_60m.jp2",
        "B02": f"{img}/R10m/T_B02_10m.jp2",
        "B05": f"{img}/R20m/T_B05_20m.jp2",
    }
    assert layouts.scene_file_of(scene) == f"{img}/R10m/T_B02_10m.jp2"


def test_band_named_files_form_one_scene_per_prefix(tmp_path):
    _touch(tmp_path, ["s/T33UUP_1_B02.tif", "s/T33UUP_1_B8A.tif", "s/T33UUQ_1_B02_10m.tif",
                      "s/T33UUQ_1_B8A_20m.tif", "s/notes.jp2"])  # fmt: skip
    found = detect(tmp_path, _listing(tmp_path))
    assert found.kind == "scenes"
    assert [s.name for s in found.scenes] == ["s/T33UUP_1", "s/T33UUQ_1"]
    assert [b for b, _, _ in found.scenes[1].files] == ["B02", "B8A"]
    assert found.problems == [("s/notes.jp2", found.problems[0][1])]
    assert "names no band" in found.problems[0][1]


def _patch(root: Path, name: str, labels: bool = True) -> None:
    rels = [f"{name}/{name}_{b}.tif" for b in ("B02", "B03", "B04", "B08", "B05", "B06")]
    _touch(root, rels)
    if labels:
        (root / name / f"{name}_labels_metadata.json").write_text("{}")


def test_patch_folders(tmp_path):
    _patch(tmp_path, "S2A_MSIL2A_20170613T101031_39_24")
    _patch(tmp_path, "S2A_MSIL2A_20170613T101031_39_25")
    found = detect(tmp_path, _listing(tmp_path))
    assert found.kind == "patches" and len(found.patch_folders) == 2


@pytest.mark.parametrize("other", ["tile file", "scene"])
def test_patches_with_anything_else_is_refused(tmp_path, write_tile, other):
    _patch(tmp_path, "S2A_MSIL2A_20170613T101031_39_24")
    if other == "tile file":
        write_tile(tmp_path / "A" / "A_1.tif")
    else:
        _touch(tmp_path, ["s/T33UUP_1_B02.tif"])
    with pytest.raises(LayoutError) as err:
        detect(tmp_path, _listing(tmp_path))
    text = str(err.value)
    assert "mixes layouts" in text and "patch folder" in text and other in text
    assert str(tmp_path) in text


def test_forced_layouts(tmp_path, write_tile):
    write_tile(tmp_path / "small.tif", size=200)
    assert detect(tmp_path, _listing(tmp_path)).kind == "tiles"
    found = detect(tmp_path, _listing(tmp_path), force="scenes")
    assert found.kind == "scenes" and [s.name for s in found.scenes] == ["small.tif"]
    _touch(tmp_path, ["b/T_B02.tif"])
    assert detect(tmp_path, _listing(tmp_path), force="tiles").kind == "tiles"
    with pytest.raises(ValueError, match="unknown layout"):
        detect(tmp_path, [], force="mosaic")


def test_real_bigearthnet_is_patches():
    root = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bigearthnet-s2"
    if not root.is_dir():
        pytest.skip("no ../shared/data")
    found = detect(root.resolve(), _listing(root.resolve()))
    assert found.kind == "patches" and len(found.patch_folders) == 54


def test_real_eurosat_is_tiles():
    root = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "eurosat-ms-subset"
    if not root.is_dir():
        pytest.skip("no ../shared/data")
    found = detect(root.resolve(), _listing(root.resolve()))
    assert found.kind == "tiles" and len(found.tile_files) == 311
    assert np.all([f[0].endswith(".tif") for f in found.tile_files])
