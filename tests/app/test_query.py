"""Query panel: drop a tile (file manager URL or a tile dragged from the grid), search an index,
read the ranking and its precision, change k, export CSV/GeoJSON, follow a result, and get a clear
message in the panel for a query that does not fit."""

from __future__ import annotations

import csv
import io
import json

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from rsgui.app.models import TileRef
from rsgui.app.panels.query import QueryPanel
from rsgui.app.thumbnails import TILE_MIME, tile_mime
from rsgui.index_store import scan_indexes
from rsgui.progress import drive
from rsgui.services.indexing import spectral_index_job


@pytest.fixture
def state(make_state, indexed_archive):
    return make_state(indexed_archive)


@pytest.fixture
def panel(show, state):
    yield show(QueryPanel(state), (900, 700))
    state.tasks.wait_idle(10)


def drop(widget, mime: QMimeData) -> QDropEvent:
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)
    return event


def file_mime(path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


def test_index_of_the_archive_is_found_and_loaded(panel, state, indexed_archive):
    entries = scan_indexes(indexed_archive)
    assert [e.method for e in entries] == ["spectral"] and entries[0].bits == 32
    assert state.index is not None and state.index.meta.bits == 32
    assert "spectral · 32 bits, 50 tiles" in panel.index_combo.currentText()
    assert panel.index_combo.findData("__open__") >= 0, "Open index… is offered"


def test_drop_a_file_from_the_file_manager_searches(qtbot, panel, state):
    rec = state.archive.records[12]
    drop(panel.drop, file_mime(state.archive.root / rec.path))
    assert state.query is not None and state.query.archive_index == 12, (
        "a file of the archive is recognised"
    )
    qtbot.waitUntil(lambda: panel.result_count() == 20, timeout=10_000)
    res = state.results
    assert [r.rank for r in res.rows] == list(range(1, 21))
    assert all(r.path != str(state.archive.root / rec.path) for r in res.rows), "query left out"
    assert res.rows == sorted(res.rows, key=lambda r: r.distance)
    n_ok = sum(r.label == rec.label for r in res.rows)
    assert f"precision@20 = {n_ok / 20:.2f} ({n_ok} of 20" in panel.summary.text()
    assert res.query_label == rec.label
    item = panel.model.items[0]
    assert item.subtitle.startswith(f"#1   d={res.rows[0].distance}\n{res.rows[0].label}")
    assert item.border is not None, "correct/incorrect marking when labels exist"


def test_drag_a_tile_from_the_grid_and_change_k(qtbot, panel, state):
    mime = tile_mime(str(state.archive.path_of(7)), 7, str(state.archive.root))
    assert mime.hasFormat(TILE_MIME)
    drop(panel, mime)
    assert state.query.archive_index == 7
    qtbot.waitUntil(lambda: panel.result_count() == 20, timeout=10_000)
    panel.k_spin.setValue(5)
    qtbot.waitUntil(lambda: panel.result_count() == 5, timeout=10_000)
    assert panel.k_slider.value() == 5
    assert "precision@5" in panel.summary.text()


def test_export_csv_and_geojson(qtbot, panel, state, tmp_path):
    state.set_query(state.tile_ref(3))
    qtbot.waitUntil(lambda: panel.result_count() == 20, timeout=10_000)
    rows = state.results.rows
    out_csv = panel.export(tmp_path / "r.csv")
    table = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(table) == 20
    assert [int(r["rank"]) for r in table] == list(range(1, 21))
    assert table[0]["path"] == rows[0].path and int(table[0]["distance"]) == rows[0].distance
    assert table[0]["label"] == rows[0].label and float(table[0]["lat"]) != 0
    gj = json.loads(panel.export(tmp_path / "r.geojson").read_text())
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == 21
    query, first = gj["features"][0], gj["features"][1]
    assert query["properties"]["role"] == "query" and query["properties"]["rank"] == 0
    assert first["properties"]["rank"] == 1 and first["properties"]["distance"] == rows[0].distance
    ring = first["geometry"]["coordinates"][0]
    assert first["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 5
    assert all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in ring)
    assert not list(tmp_path.glob(".*tmp*")), "written atomically, no temporary left"


def test_a_result_exports_as_a_georeferenced_chip(qtbot, panel, state, tmp_path):
    import rasterio

    state.set_query(state.tile_ref(3))
    qtbot.waitUntil(lambda: panel.result_count() == 20, timeout=10_000)
    first = state.results.rows[0]
    out = panel.export_chip(first.archive_index, tmp_path / "chip.tif")
    rec = state.archive.records[first.archive_index]
    with rasterio.open(out) as ds:
        assert ds.count == len(state.archive.band_names) and ds.crs is not None
        assert tuple(ds.bounds) == pytest.approx(rec.georef.bounds)
        assert (ds.read() == state.archive.read_raw(first.archive_index)).all()
    assert panel.export_chip(first.archive_index, tmp_path / "new" / "c.tif").is_file()
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    assert panel.export_chip(first.archive_index, blocked / "c.tif") is None
    assert "blocked" in panel.message.text()


def test_results_navigate_and_become_the_next_query(qtbot, panel, state):
    state.set_query(state.tile_ref(0))
    qtbot.waitUntil(lambda: panel.result_count() == 20, timeout=10_000)
    panel.step_result(1)
    first = state.results.rows[0]
    assert state.selected is not None and str(state.selected.path) == first.path
    panel.step_result(1)
    assert str(state.selected.path) == state.results.rows[1].path
    panel.step_result(-1)
    assert str(state.selected.path) == first.path
    panel._result_as_query(panel.model.index(1))
    assert (
        str(state.query.path) == state.results.rows[1].path or state.query.archive_index is not None
    )
    qtbot.waitUntil(
        lambda: state.results is not None and state.results.query == state.query, timeout=10_000
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("text", "bad.tif"), ("four_bands", "4 bands"), ("size", "32x32")],
)
def test_a_query_that_does_not_fit_gets_a_message_in_the_panel(
    qtbot, panel, state, tmp_path, write_tile, kind, expected
):
    if kind == "text":
        path = tmp_path / "bad.tif"
        path.write_text("this is not a raster")
    elif kind == "four_bands":
        path = write_tile(tmp_path / "four.tif", bands=4)
    else:
        path = write_tile(tmp_path / "small.tif", size=32)
    drop(panel.drop, file_mime(path))
    qtbot.waitUntil(lambda: "Cannot search" in panel.message.text(), timeout=10_000)
    text = panel.message.text()
    assert expected in text and path.name in text, text
    assert "c62828" in panel.message.styleSheet(), "shown as an error"
    assert panel.result_count() == 0 and state.results is None


def test_search_without_query_or_index_explains(panel, state):
    state.set_index(None)
    panel.search()
    assert "query" in panel.message.text().lower()
    state.set_query(state.tile_ref(1))
    assert "index" in panel.message.text().lower()


def test_build_spectral_index_in_a_worker(qtbot, panel, state):
    panel.bits_combo.setCurrentIndex(panel.bits_combo.findData(64))
    panel.build_button.click()
    assert panel.cancel_button.isVisibleTo(panel) and not panel.build_button.isEnabled()
    qtbot.waitUntil(lambda: not state.tasks.active, timeout=60_000)
    assert state.index is not None and state.index.meta.bits == 64
    assert any(e.bits == 64 for e in state.indexes)
    assert panel.build_button.isEnabled() and not panel.cancel_button.isVisibleTo(panel)


def test_outside_query_without_labels_has_no_precision(qtbot, panel, state, tmp_path, write_tile):
    path = write_tile(tmp_path / "free.tif")
    state.set_query(TileRef(path))
    qtbot.waitUntil(lambda: panel.result_count() == 20, timeout=10_000)
    assert "precision unknown" in panel.summary.text()
    assert all(it.border is None for it in panel.model.items)


@pytest.mark.realdata
def test_real_subset_read_only_archive_index_goes_to_the_user_cache(
    qtbot, make_state, show, real_archive, tmp_path, monkeypatch
):
    """The shared data folder is marked read-only: the index is written to the user cache, found
    there again, and a SeaLake query finds mostly SeaLake."""
    import os
    import stat

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if real_archive.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        pytest.skip("the real archive folder is writable here")
    before = set(os.listdir(real_archive))
    s = make_state(real_archive)
    path = drive(spectral_index_job(s.archive, 64)).path
    assert str(path).startswith(str(tmp_path / "xdg")), path
    assert set(os.listdir(real_archive)) == before
    p = show(QueryPanel(s))
    s.refresh_indexes()
    assert s.index is not None and len(s.index) == len(s.archive)
    lake = next(i for i, r in enumerate(s.archive.records) if r.label == "SeaLake")
    p.k_spin.setValue(10)
    s.set_query(s.tile_ref(lake))
    qtbot.waitUntil(lambda: p.result_count() == 10, timeout=30_000)
    same = sum(r.label == "SeaLake" for r in s.results.rows)
    assert same >= 6, [r.label for r in s.results.rows]
    assert f"precision@10 = {same / 10:.2f}" in p.summary.text()
