"""The search's area filter: only tiles whose centre lies in a lon/lat box are ranked, exactly as
the unfiltered ranking orders them; tiles without georeference are left out while it is on."""

from __future__ import annotations

import numpy as np
import pytest

from rsgui.archive import Archive
from rsgui.index_store import HashIndex
from rsgui.progress import drive
from rsgui.services.indexing import spectral_index_job
from rsgui.services.search import (
    area_mask,
    centres_in_area,
    check_area,
    search,
    search_allowed,
)

CLASSES = ("Forest", "River", "SeaLake")


@pytest.fixture
def geo_archive(tmp_path, write_tile):
    """12 georeferenced tiles in a 4 x 3 grid 20 km apart (UTM 31N, near 3 E 45 N), and
    two without georeference; a 32-bit spectral index."""
    root = tmp_path / "arch"
    for c, cls in enumerate(CLASSES):
        for j in range(4):
            origin = (400_000.0 + 20_000 * j, 5_000_000.0 + 20_000 * c)
            write_tile(root / cls / f"{cls}_{j}.tif", bands=13, size=16, origin=origin)
    for j in range(2):
        write_tile(root / "Forest" / f"Forest_nogeo_{j}.tif", bands=13, size=16, crs=False)
    archive = Archive.open(root)
    built = drive(spectral_index_job(archive, 32))
    return archive, HashIndex.load(built.path)


def centre_of(archive, path):
    i = archive.find(path)
    return archive.records[i].georef.center_lonlat


def west_half(archive):
    lons = sorted(
        r.georef.center_lonlat[0] for r in archive.records if r.georef.center_lonlat is not None
    )
    mid = (lons[5] + lons[6]) / 2  # between the second and third columns
    return (-180.0, -90.0, mid, 90.0)


def test_results_lie_in_the_area_and_keep_the_unfiltered_order(geo_archive):
    archive, index = geo_archive
    area = west_half(archive)
    query = archive.path_of(0)
    full = search(index, query, len(index), archive=archive)
    inside = search(index, query, 50, archive=archive, area=area)
    placed = [r for r in archive.records if r.georef.center_lonlat is not None]
    n_in = sum(centres_in_area(np.array([r.georef.center_lonlat]), area)[0] for r in placed)
    assert n_in == 6, "two of four columns"
    # the query is inside the area and left out of its own results
    assert len(inside.rows) == n_in - 1
    for r in inside.rows:
        lon, lat = centre_of(archive, r.path)
        assert lon <= area[2], f"{r.path} lies outside the area"
    expected = [r.path for r in full.rows if (c := centre_of(archive, r.path)) and c[0] <= area[2]]
    assert [r.path for r in inside.rows] == expected, "the area keeps the exact ranking"
    assert [r.rank for r in inside.rows] == list(range(1, len(inside.rows) + 1))
    assert "(6 tiles)" in inside.filters and inside.filters.startswith("area ")


def test_tiles_without_georeference_are_left_out_when_the_filter_is_on(geo_archive):
    archive, index = geo_archive
    query = archive.path_of(0)
    everywhere = (-180.0, -90.0, 180.0, 90.0)
    off = search(index, query, 50, archive=archive)
    on = search(index, query, 50, archive=archive, area=everywhere)
    assert any("nogeo" in r.path for r in off.rows)
    assert not any("nogeo" in r.path for r in on.rows)
    assert len(on.rows) == 11 and len(off.rows) == 13
    mask = area_mask(index, everywhere, archive)
    assert (
        mask.sum() == 12
        and not mask[[index.position_of(p) for p in index.paths if "nogeo" in p]].any()
    )


def test_an_area_with_no_tile_gives_no_result(geo_archive):
    archive, index = geo_archive
    res = search(index, archive.path_of(0), 10, archive=archive, area=(100, -10, 110, 0))
    assert res.rows == [] and "(0 tiles)" in res.filters


def test_the_area_needs_the_archive_and_a_valid_box(geo_archive):
    archive, index = geo_archive
    with pytest.raises(ValueError, match="archive open"):
        search(index, archive.path_of(0), 5, area=(-10, 40, 10, 50))
    with pytest.raises(ValueError, match="west <= east"):
        search(index, archive.path_of(0), 5, archive=archive, area=(10, 40, -10, 50))
    with pytest.raises(ValueError, match="finite"):
        check_area((0, float("nan"), 1, 1))
    with pytest.raises(ValueError, match="west,south,east,north"):
        check_area((0, 1, 2))


def test_search_allowed_matches_the_full_ranking_for_a_float_index():
    from rsgui.index_store import IndexMeta

    rng = np.random.default_rng(1)
    feats = rng.normal(size=(40, 8)).astype(np.float32)
    meta = IndexMeta(method="x", band_names=("B02",), bits=8, kind="float")
    index = HashIndex(meta, [f"t{i}.tif" for i in range(40)], [None] * 40, features=feats)
    allowed = np.zeros(40, bool)
    allowed[::3] = True
    q = feats[4:5]
    idx, sim = search_allowed(index, q, 5, allowed, own=None)
    full_i, _ = index.search(q, 40)
    expected = [i for i in full_i[0].tolist() if allowed[i]][:5]
    assert idx[0].tolist() == expected and np.all(np.diff(sim[0]) <= 0)
