"""BigEarthNet patch folders: detection, band stacking at 10 m, labels, broken and hostile patches."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from rsgui.archive import Archive
from rsgui.bands import BAND_RESOLUTION_M
from rsgui.errors import TileReadError
from rsgui.patches import (
    PATCH_BANDS,
    PatchLabelsError,
    looks_like_patch_folder,
    open_patches,
    read_labels,
)

REAL_BEN = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bigearthnet-s2"
BASE = 12  # 10 m side of the fake patches: 20 m bands are 6x6, 60 m bands 2x2

NAMES = {
    "v1": ["S2A_MSIL2A_20170613T101031_{}_{}", "S2B_MSIL2A_20180525T94030_{}_{}"],
    "v2": ["S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_{}_{}"],
}


def _write_band(path: Path, data: np.ndarray, crs: bool = False) -> None:
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.errors import NotGeoreferencedWarning

    h, w = data.shape
    geo = {}
    if crs:  # UTM 33N, the patch 120 m wide whatever the band's resolution
        geo = {
            "crs": CRS.from_epsg(32633),
            "transform": Affine(120 / w, 0, 500_000, 0, -120 / h, 5_300_000),
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with (
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            rasterio.open(
                path, "w", driver="GTiff", dtype="uint16", count=1, height=h, width=w, **geo
            ) as dst,
        ):
            dst.write(data[None])


def make_patch(
    root: Path, name: str, labels: list[str], seed: int = 0, labels_19=None, skip=(), crs=False
) -> Path:
    """One fake patch folder: 12 band files at 10:20:60 m sizes, and its labels JSON."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for b in PATCH_BANDS:
        if b in skip:
            continue
        side = BASE * 10 // BAND_RESOLUTION_M[b]
        data = rng.integers(100, 4000, (side, side)).astype("u2")
        _write_band(folder / f"{name}_{b}.tif", data, crs)
    meta: dict = {"labels": labels}
    if labels_19 is not None:
        meta["labels_19"] = labels_19
    (folder / f"{name}_labels_metadata.json").write_text(json.dumps(meta))
    return folder


LABELS = [
    ["Pastures"],
    ["Mixed forest", "Pastures"],
    ["Mixed forest", "Inland waters"],
    ["Urban fabric"],
]


@pytest.fixture(params=["v1", "v2"])
def patches(request, tmp_path) -> tuple[Path, list[str]]:
    root = tmp_path / "ben"
    names = []
    for i, labs in enumerate(LABELS):
        pattern = NAMES[request.param][i % len(NAMES[request.param])]
        name = pattern.format(10 + i, 20 + i)
        make_patch(root, name, labs, seed=i)
        names.append(name)
    return root, sorted(names)


def test_looks_like_patch_folder():
    name = "S2A_MSIL2A_20170613T101031_39_24"
    files = [f"{name}_{b}.tif" for b in PATCH_BANDS] + [f"{name}_labels_metadata.json"]
    assert looks_like_patch_folder(name, files)
    assert looks_like_patch_folder(name, files[:3] + files[-1:])  # broken, still a patch
    assert not looks_like_patch_folder(name, ["a.tif", "b.tif"])
    assert not looks_like_patch_folder("other", files)
    assert not looks_like_patch_folder(name, [f"{name}_labels_metadata.json"])
    assert not looks_like_patch_folder(name, [f"{name}_B13.tif", f"{name}_labels_metadata.json"])


def test_open_stacks_bands_at_10m(patches):
    import rasterio
    from rasterio.enums import Resampling

    root, names = patches
    src = open_patches(root, use_cache=False)
    assert [r.path for r in src.records] == names
    assert src.band_names == PATCH_BANDS == (
        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12",
    )  # fmt: skip
    assert src.tile_shape == (BASE, BASE) and src.problems == []
    archive = Archive.from_source(root, src)
    assert len(archive) == 4 and archive.band_names == PATCH_BANDS
    raw = src.reader.read(1, list(range(1, 13)))
    assert raw.shape == (12, BASE, BASE)
    name = names[1]
    for k, b in enumerate(PATCH_BANDS):
        with rasterio.open(root / name / f"{name}_{b}.tif") as ds:
            if BAND_RESOLUTION_M[b] == 10:
                want = ds.read(1)
            else:
                want = ds.read(1, out_shape=(BASE, BASE), resampling=Resampling.cubic_spline)
        np.testing.assert_array_equal(raw[k], want, err_msg=b)
    # a subset of bands in another order comes back in the order asked
    sub = src.reader.read(1, [PATCH_BANDS.index("B8A") + 1, PATCH_BANDS.index("B02") + 1])
    np.testing.assert_array_equal(sub, raw[[8, 1]])
    batch = archive.read([0, 1], ["B04", "B8A"])
    assert batch.pixels.shape == (2, 2, BASE, BASE)
    np.testing.assert_allclose(batch.pixels[1, 1], np.minimum(raw[8], 4095) / 4095, rtol=1e-6)


def test_labels_parsed(patches):
    root, _names = patches
    src = open_patches(root, use_cache=False)
    assert src.label_names == ("Inland waters", "Mixed forest", "Pastures", "Urban fabric")
    assert src.label_sets.dtype == bool and src.label_sets.shape == (4, 4)
    for r in src.records:  # each record's set is what its own folder's JSON says
        meta = json.loads((root / r.path / f"{r.path}_labels_metadata.json").read_text())
        got = {src.label_names[j] for j in np.flatnonzero(src.label_sets[r.index])}
        assert got == set(meta["labels"])
    assert sorted(map(sorted, (m for m in LABELS))) == sorted(
        sorted(src.label_names[j] for j in np.flatnonzero(row)) for row in src.label_sets
    )
    assert all(r.label is None for r in src.records)  # multi-label tiles have no single label


def test_single_label_archive_keeps_the_label(tmp_path):
    root = tmp_path / "ben"
    make_patch(root, "P_1_1", ["Pastures"], 0)
    make_patch(root, "P_1_2", ["Urban fabric"], 1)
    src = open_patches(root, use_cache=False)
    assert [r.label for r in src.records] == ["Pastures", "Urban fabric"]


def test_v1_and_v2_use_the_19_classes(tmp_path):
    """v1 labels in 43 classes with labels_19, v2 only in 19: one nomenclature for both."""
    root = tmp_path / "ben"
    make_patch(root, "S2A_MSIL2A_20170613T101031_1_1", ["Sea and ocean"], 0, ["Marine waters"])
    make_patch(root, "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_1_2", ["Marine waters"], 1)
    src = open_patches(root, use_cache=False)
    assert src.label_names == ("Marine waters",)
    assert src.label_sets.all()
    assert src.reader.nomenclature == "19"
    assert src.reader.labels[0] == ["Sea and ocean"]


def test_broken_patches_are_skipped_with_reason(tmp_path):
    root = tmp_path / "ben"
    make_patch(root, "P_0_0", ["Pastures"], 0)
    make_patch(root, "P_0_1", ["Pastures"], 1, skip=("B8A",))
    make_patch(root, "P_0_2", ["Pastures"], 2)
    _write_band(root / "P_0_2" / "P_0_2_B05.tif", np.ones((5, 5), "u2"))  # wrong size
    make_patch(root, "P_0_3", ["Pastures"], 3)
    (root / "P_0_3" / "P_0_3_labels_metadata.json").write_text("{not json")
    make_patch(root, "P_0_4", ["Pastures"], 4)
    (root / "P_0_4" / "P_0_4_B11.tif").write_bytes(b"II*\x00garbage")
    src = open_patches(root, use_cache=False)
    assert [r.path for r in src.records] == ["P_0_0"]
    reasons = {p.path: p.reason for p in src.problems}
    assert "P_0_1_B8A.tif" in reasons["P_0_1"] and "missing" in reasons["P_0_1"]
    assert "5x5" in reasons["P_0_2/P_0_2_B05.tif"] and "6x6" in reasons["P_0_2/P_0_2_B05.tif"]
    assert "not a readable labels file" in reasons["P_0_3/P_0_3_labels_metadata.json"]
    assert "P_0_4/P_0_4_B11.tif" in reasons
    assert all("\n" not in r for r in reasons.values())


@pytest.mark.parametrize(
    "content, words",
    [
        (b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),  # past the parser's limit
        (b'{"labels": ["' + b"x" * (1 << 20) + b'"]}', "too large"),
        (b"\x00\xff\xfe binary", "not a readable labels file"),
        (b'{"labels": "Pastures"}', "not a list"),
        (b'{"labels": [1, 2]}', "not a label name"),
        (b'{"labels": [' + b'"a",' * 5000 + b'"b"]}', "at most"),
        (b"[]", "expected a JSON object"),
        (b'{"other": 1}', "no 'labels'"),
    ],
)
def test_hostile_labels_refused(tmp_path, content, words):
    p = tmp_path / "x_labels_metadata.json"
    p.write_bytes(content)
    with pytest.raises(PatchLabelsError, match=words) as info:
        read_labels(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_nothing_readable_is_one_clear_error(tmp_path):
    root = tmp_path / "ben"
    make_patch(root, "P_0_1", ["Pastures"], 1, skip=("B02",))
    with pytest.raises(TileReadError) as info:
        open_patches(root, use_cache=False)
    msg = str(info.value)
    assert "1 patch folder(s), none readable" in msg and "_B01.tif" in msg and "\n" not in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TileReadError, match="no patch folder"):
        open_patches(empty)


def test_cache_is_used_and_follows_changes(patches):
    root, names = patches
    first = open_patches(root)
    assert not first.cache_hit and (root / ".rsgui" / "patches.json").is_file()
    again = open_patches(root)
    assert again.cache_hit and [r.path for r in again.records] == names
    np.testing.assert_array_equal(again.label_sets, first.label_sets)
    # a changed labels file is read afresh
    lab = root / names[0] / f"{names[0]}_labels_metadata.json"
    lab.write_text(json.dumps({"labels": ["Arable land"]}))
    later = open_patches(root)
    assert not later.cache_hit and "Arable land" in later.label_names
    # a forged entry (labels that are not names) is read afresh from the folder
    cache = root / ".rsgui" / "patches.json"
    d = json.loads(cache.read_text())
    d["patches"][names[1]][2] = [1, {"x": 2}]
    cache.write_text(json.dumps(d))
    forged = open_patches(root)
    assert not forged.cache_hit
    np.testing.assert_array_equal(forged.label_sets, later.label_sets)
    # a damaged cache only costs time
    (root / ".rsgui" / "patches.json").write_text("[" * 100_000)
    assert len(open_patches(root).records) == 4


def test_georeferenced_patches_are_placed(tmp_path):
    root = tmp_path / "ben"
    make_patch(root, "P_1_1", ["Pastures"], 0, crs=True)
    make_patch(root, "P_1_2", ["Pastures"], 1)
    for _ in range(2):  # from the headers, then from the cache
        recs = open_patches(root).records
        assert recs[0].georef.crs and recs[0].georef.bounds == (
            500000.0,
            5299880.0,
            500120.0,
            5300000.0,
        )
        lon, lat = recs[0].georef.center_lonlat
        assert 14 < lon < 16 and 47 < lat < 48
        assert recs[1].georef.crs is None and recs[1].georef.center_lonlat is None


def test_stats_and_path_of(patches):
    root, names = patches
    src = open_patches(root, use_cache=False)
    st = src.reader.stats()
    assert st.shape == (4, 3) and (st[:, 0] > 0).all() and (st[:, 2] == 0).all()
    assert src.reader.path_of(0) == root / names[0]


def test_folder_stats_follow_changes(patches):
    from rsgui.patches import patch_folder_stats

    root, names = patches
    src = open_patches(root, use_cache=False)
    assert patch_folder_stats(root / names[0]) == tuple(src.reader.stats()[0])
    lab = root / names[0] / f"{names[0]}_labels_metadata.json"
    lab.write_text(json.dumps({"labels": ["Pastures", "Arable land"]}))
    assert patch_folder_stats(root / names[0]) != tuple(src.reader.stats()[0])


def test_reading_a_deleted_band_names_the_file(patches):
    root, names = patches
    src = open_patches(root, use_cache=False)
    (root / names[0] / f"{names[0]}_B05.tif").unlink()
    with pytest.raises(TileReadError, match="B05.tif: file not found"):
        src.reader.read(0, [PATCH_BANDS.index("B05") + 1])


@pytest.mark.realdata
def test_real_bigearthnet_patches(tmp_path):
    """The 54 real patches: 12 bands at 120x120, labels, and a spectral index evaluated with the
    multi-label measures (the archive is opened without writing into the shared folder)."""
    if not REAL_BEN.is_dir():
        pytest.skip("real data ../shared/data/bigearthnet-s2 not present")
    from rsgui.progress import drive
    from rsgui.services.evaluation import evaluate
    from rsgui.services.indexing import index_job

    t = time.perf_counter()
    archive = Archive.open(REAL_BEN, use_cache=False)  # the layout is detected as patches
    elapsed = time.perf_counter() - t
    assert len(archive) == 54 and archive.band_names == PATCH_BANDS
    assert archive.tile_shape == (120, 120) and archive.problems == []
    assert archive.label_sets.shape == (54, len(archive.label_names))
    assert archive.label_sets.any(axis=1).all() and len(archive.label_names) >= 10
    assert elapsed < 30
    batch = archive.read([0], "all")
    assert batch.pixels.shape == (1, 12, 120, 120) and np.isfinite(batch.pixels).all()
    index = drive(index_job(archive, "spectral", bits=32)).index
    if index.label_sets is None:  # until index_job passes the archive's label sets itself
        index.with_label_sets(archive.label_sets, archive.label_names)
    index.save(tmp_path / "spec")
    from rsgui.index_store import HashIndex

    loaded = HashIndex.load(tmp_path / "spec")
    e = evaluate(loaded, k=(10, 20), n=(5, 10))
    assert e.multilabel and e.n_queries == 54
    figures = [*e.map_retrieved.values(), *e.precision.values(), *e.mean_jaccard.values()]
    figures += list(e.ndcg.values())
    assert all(0 < v <= 1 for v in figures), figures
    assert "shares at least one label" in e.to_markdown()


def test_browser_filters_by_label_and_lists_all_labels(qtbot, patches):
    """The browser of a multi-label archive: a label filter (a tile under each of its labels)
    and every label of the selected tile in its details."""
    from rsgui.app.panels.browser import ALL_LABELS, BrowserPanel
    from rsgui.app.state import AppState

    root, _names = patches
    state = AppState()
    state.set_archive(Archive.from_source(root, open_patches(root, use_cache=False)))
    panel = BrowserPanel(state)
    qtbot.addWidget(panel)
    try:
        assert panel.class_combo.itemText(0) == f"{ALL_LABELS} (4)"
        i = panel.class_combo.findData("Mixed forest")
        assert panel.class_combo.itemText(i) == "Mixed forest (2)"
        panel.class_combo.setCurrentIndex(i)
        assert panel.visible_count() == 2
        panel.class_combo.setCurrentIndex(panel.class_combo.findData("Pastures"))
        assert panel.visible_count() == 2
        archive = state.archive
        two = next(r.index for r in archive.records if archive.label_sets[r.index].sum() == 2)
        panel.show_details(two)
        text = panel.details_text()
        for j in np.flatnonzero(archive.label_sets[two]):
            assert archive.label_names[j] in text
        assert "Labels (2)" in text and "12 bands" in text
    finally:
        panel.cache.shutdown()


def test_a_read_only_folder_is_never_written_into(patches, tmp_path, monkeypatch):
    root, names = patches
    monkeypatch.setenv("RSGUI_CACHE_DIR", str(tmp_path / "user-cache"))
    mode = root.stat().st_mode
    root.chmod(0o555)  # shared read-only (an administrator could still write)
    try:
        first = open_patches(root)
        again = open_patches(root)
    finally:
        root.chmod(mode)
    assert not (root / ".rsgui").exists()
    assert again.cache_hit and len(first.records) == len(names)
    assert list((tmp_path / "user-cache").rglob("patches.json"))
