"""The map: every footprint of a georeferenced archive, results coloured by rank, a click on a
footprint selects that tile (the result grid follows), a grid selection is circled on the map,
the area filter limits the search to what the map shows, a plain message for an archive without
georeference, and a scene archive's overview image placed by its corners."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from rsgui.app.map_model import Footprints, MapModel, corner_transform, density_rgba
from rsgui.app.panels.map_view import MapView, rank_colours
from rsgui.app.panels.query import QueryPanel
from rsgui.archive import Archive
from rsgui.progress import drive
from rsgui.services.indexing import spectral_index_job
from rsgui.tiles import GeoRef, TileRecord

CLASSES = ("Forest", "River", "SeaLake")
N_TILES = 12


@pytest.fixture
def geo_root(tmp_path, write_tile):
    """12 georeferenced 16 x 16 tiles (UTM 31N, near 3 E 45 N) in a 4 x 3 grid 2 km apart,
    with a spectral index."""
    root = tmp_path / "arch"
    for c, cls in enumerate(CLASSES):
        for j in range(4):
            origin = (400_000.0 + 2_000 * j, 5_000_000.0 + 2_000 * c)
            write_tile(root / cls / f"{cls}_{j}.tif", bands=13, size=16, origin=origin)
    drive(spectral_index_job(Archive.open(root), 32))
    return root


@pytest.fixture
def mapped(qtbot, show, make_state, geo_root):
    """(state, map model, map view, search panel) on the georeferenced archive."""
    state = make_state(geo_root)
    model = MapModel()
    view = show(MapView(state, model), (700, 600))
    panel = show(QueryPanel(state, map_model=model), (800, 600))
    qtbot.waitUntil(lambda: model.footprints.n_placed == N_TILES, timeout=10_000)
    qtbot.waitUntil(lambda: state.index is not None, timeout=10_000)
    yield state, model, view, panel
    state.tasks.wait_idle(10)


def n_rings(curve) -> int:
    x, _y = curve.getData()
    return 0 if x is None else int(np.isnan(x).sum())


def centre(state, i: int) -> tuple[float, float]:
    return state.archive.records[i].georef.center_lonlat


def search_first(qtbot, state, panel, i: int = 0) -> None:
    state.set_query(state.tile_ref(i))
    qtbot.waitUntil(lambda: state.results is not None and panel.result_count() > 0, timeout=10_000)


def test_every_footprint_is_drawn_and_the_view_fits_the_archive(mapped):
    state, model, view, _panel = mapped
    assert view.drawn_as == "outlines" and n_rings(view.tile_outlines) == N_TILES
    w, s, e, n = view.view_area()
    lons, lats = zip(*(centre(state, i) for i in range(N_TILES)), strict=True)
    assert w < min(lons) and max(lons) < e and s < min(lats) and max(lats) < n
    assert (e - w) < 5, "zoomed to the archive, not the world"
    assert f"{N_TILES} tiles placed" in view.message.text()
    x, _ = view.world.getData()
    assert x is not None and len(x) > 5000, "the world outline is drawn"


def test_zoomed_out_tiles_become_points(qtbot, mapped):
    _state, _model, view, _panel = mapped
    view.show_area((-180, -60, 180, 80))
    qtbot.waitUntil(lambda: view.drawn_as == "points", timeout=5000)
    assert len(view.tile_points.data) == N_TILES and n_rings(view.tile_outlines) == 0


def test_results_are_coloured_by_rank(qtbot, mapped):
    state, model, view, panel = mapped
    search_first(qtbot, state, panel)
    rows = state.results.rows
    assert len(rows) == N_TILES - 1
    spots = view.result_points.points()
    assert len(spots) == len(rows)
    rank_of = {r.archive_index: r.rank for r in rows}
    k = len(rows)
    for spot in spots:
        rank = rank_of[spot.data()]
        want = rank_colours(np.array([rank]), k)[0]
        got = spot.brush().color()
        assert (got.red(), got.green(), got.blue()) == tuple(int(v) for v in want[:3]), rank
        x, y = centre(state, spot.data())
        assert spot.pos().x() == pytest.approx(x) and spot.pos().y() == pytest.approx(y)
    assert view.result_colour(1) != view.result_colour(k)
    assert view.colorbar.isVisible() and tuple(view.colorbar.levels()) == (1, k)
    qx, qy = view.query_point.getData()
    assert (qx[0], qy[0]) == pytest.approx(centre(state, 0)), "the query is marked"


def test_a_click_on_a_footprint_selects_that_tile_and_the_grid_follows(qtbot, mapped):
    state, model, view, panel = mapped
    search_first(qtbot, state, panel)
    third = state.results.rows[2]
    lon, lat = centre(state, third.archive_index)
    qtbot.mouseClick(
        view.graphics.viewport(), Qt.MouseButton.LeftButton, pos=view.view_point(lon, lat)
    )
    qtbot.waitUntil(lambda: model.selected == third.archive_index, timeout=3000)
    assert state.selected is not None and state.selected.archive_index == third.archive_index
    assert panel.view.currentIndex().row() == 2, "the grid selects the clicked result"
    sx, sy = view.selected_point.getData()
    assert (sx[0], sy[0]) == pytest.approx((lon, lat))
    # a click on empty ground selects nothing new
    w, s, e, n = view.view_area()
    assert view.click_at(w + 0.001 * (e - w), s + 0.001 * (n - s)) is None
    assert model.selected == third.archive_index


def test_selecting_in_the_grid_highlights_the_footprint(qtbot, mapped):
    state, model, view, panel = mapped
    search_first(qtbot, state, panel)
    row = 4
    panel.view.setCurrentIndex(panel.model.index(row))
    aidx = state.results.rows[row].archive_index
    assert model.selected == aidx
    sx, sy = view.selected_outline.getData()
    ring = np.asarray(state.archive.records[aidx].georef.footprint_lonlat)
    np.testing.assert_allclose(np.c_[sx, sy], ring)
    # the archive browser (any tile selection) moves the highlight too
    state.select_tile(state.tile_ref(7))
    assert model.selected == 7
    sx, _ = view.selected_point.getData()
    assert sx[0] == pytest.approx(centre(state, 7)[0])


def test_the_area_filter_limits_results_to_the_visible_map(qtbot, mapped):
    state, model, view, panel = mapped
    search_first(qtbot, state, panel)
    assert len(state.results.rows) == N_TILES - 1
    lons = sorted({round(centre(state, i)[0], 5) for i in range(N_TILES)})
    lats = [centre(state, i)[1] for i in range(N_TILES)]
    # the two western columns (the view keeps its aspect, so it may show a little more)
    view.show_area(
        (lons[0] - 0.004, min(lats) - 0.004, (lons[1] + lons[2]) / 2, max(lats) + 0.004), pad=0
    )
    qtbot.wait(200)
    w, s, e, n = view.view_area()
    inside = [
        i for i in range(N_TILES) if w <= centre(state, i)[0] <= e and s <= centre(state, i)[1] <= n
    ]
    assert 0 < len(inside) < N_TILES and 0 in inside
    qtbot.waitUntil(lambda: model.area_count == len(inside), timeout=3000)
    assert f"{len(inside)} of 12 tiles" in view.area_label.text()
    view.area_check.setChecked(True)
    qtbot.waitUntil(
        lambda: state.results is not None and len(state.results.rows) == len(inside) - 1,
        timeout=10_000,
    )
    assert {r.archive_index for r in state.results.rows} == set(inside) - {0}
    assert f"Search limited to {len(inside)} of 12 tiles" in view.area_label.text()
    assert f"({len(inside)} tiles)" in panel.summary.text(), "the panel says what was searched"
    view.area_check.setChecked(False)
    qtbot.waitUntil(lambda: len(state.results.rows) == N_TILES - 1, timeout=10_000)


def test_a_drawn_rectangle_can_be_the_area(qtbot, mapped):
    state, model, view, panel = mapped
    search_first(qtbot, state, panel)
    view.area_combo.setCurrentIndex(view.area_combo.findData("rectangle"))
    view.area_combo.activated.emit(view.area_combo.currentIndex())
    assert view.rect_roi.isVisible() and model.rectangle is not None
    c = centre(state, 5)
    view.rect_roi.setPos((c[0] - 0.005, c[1] - 0.005))
    view.rect_roi.setSize((0.01, 0.01))  # one tile: the query's results come from it alone
    qtbot.waitUntil(lambda: model.area_count == 1, timeout=3000)
    model.set_area_enabled(True)
    assert view.area_check.isChecked()
    qtbot.waitUntil(lambda: [r.archive_index for r in state.results.rows] == [5], timeout=10_000)


def test_an_archive_without_georeference_says_so(qtbot, show, make_state, tmp_path, write_tile):
    for c in ("A", "B"):
        for n in range(2):
            write_tile(tmp_path / c / f"{c}_{n}.jpg", 3, 16, "uint8", 100, crs=False, driver="JPEG")
    state = make_state(tmp_path, reference=False)
    view = show(MapView(state), (600, 500))
    qtbot.waitUntil(lambda: not view.model.placing, timeout=10_000)
    text = view.message.text()
    assert "None of the 4 tiles" in text and "georeference" in text
    assert "georeference" in view.empty_text.toPlainText()
    assert view.drawn_as == "none" and view.area_label.text() == ""
    x, _ = view.world.getData()
    assert x is not None and len(x) > 0, "the world is still shown"


def test_an_overview_image_is_drawn_at_its_corners(qtbot, show, make_state, tmp_path):
    corners = ((10.0, 46.0), (11.0, 46.2), (11.2, 45.2), (10.2, 45.0))
    rgb = np.zeros((50, 80, 3), np.uint8)
    rgb[..., 1] = 200
    calls = []

    def overviews(max_side=1024):
        calls.append(max_side)
        return [(rgb, corners)]

    ring = ((10.4, 45.5), (10.5, 45.5), (10.5, 45.6), (10.4, 45.6), (10.4, 45.5))
    rec = TileRecord(0, "a.tif", None, 16, 16, 13, GeoRef("EPSG:4326", None, (10.45, 45.55), ring))
    fake = SimpleNamespace(root=tmp_path, records=[rec], overviews=overviews)
    fake.__len__ = lambda: 1
    state = make_state()
    state.archive = None
    view = show(MapView(state), (600, 500))
    state.archive = _Sized(fake)
    state.archiveChanged.emit()
    qtbot.waitUntil(lambda: len(view.overview_items) == 1, timeout=10_000)
    assert calls == [1024]
    item = view.overview_items[0]
    assert item.image.shape == (50, 80, 3)
    t = item.transform()
    for (px, py), (lon, lat) in zip(
        ((0, 0), (80, 0), (0, 50)), (corners[0], corners[1], corners[3]), strict=True
    ):
        p = t.map(QPointF(px, py))
        assert (p.x(), p.y()) == pytest.approx((lon, lat))
    assert item in view.vb.addedItems and item.zValue() < view.tile_outlines.zValue()
    assert view.model.footprints.n_placed == 1


class _Sized:
    """A fake scene archive: records, a root and ``overviews``."""

    def __init__(self, ns) -> None:
        self.root, self.records, self.overviews = ns.root, ns.records, ns.overviews

    def __len__(self) -> int:
        return len(self.records)


def test_corner_transform_maps_the_three_corners():
    m11, m12, m21, m22, dx, dy = corner_transform((10, 20, 3), ((0, 10), (2, 10), (2, 9), (0, 9)))
    assert (dx, dy) == (0, 10) and (m11, m12) == (0.1, 0) and (m21, m22) == (0, -0.1)


def test_the_window_shows_the_map_beside_the_results(qtbot, window, geo_root, tmp_path):
    window.open_archive(geo_root)
    qtbot.waitUntil(lambda: window.state.archive is not None, timeout=20_000)
    search = window.panel("Search")
    dock = window.map_dock
    assert dock is not None and window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert window.tabifiedDockWidgets(dock) == [], "beside the viewer, not hidden behind it"
    assert dock.toggleViewAction() in window.view_menu.actions()
    assert window.panel("Map").model is window.map_model is search.map_model
    qtbot.waitUntil(lambda: window.map_model.footprints.n_placed == N_TILES, timeout=10_000)
    qtbot.waitUntil(lambda: window.state.index is not None, timeout=10_000)
    window.show_tab("Search")
    window.state.set_query(window.state.tile_ref(3))
    qtbot.waitUntil(lambda: search.result_count() == N_TILES - 1, timeout=10_000)
    from rsgui.app.screenshot import map_shots

    map_shots(window, tmp_path)
    assert {p.name for p in tmp_path.glob("map*.png")} == {
        "map.png",
        "map-detail.png",
        "map-area.png",
    }
    assert not window.map_model.area_enabled and not window.state.results.filters, "put back"


def test_many_tiles_become_a_density_image(qtbot, show, make_state):
    rng = np.random.default_rng(0)
    n = 40_000  # more than points can show quickly
    c = np.c_[rng.uniform(0, 10, n), rng.uniform(50, 60, n)]
    d = 0.002
    rings = np.stack([c + [-d, -d], c + [d, -d], c + [d, d], c + [-d, d], c + [-d, -d]], 1)
    view = show(MapView(make_state()), (600, 500))
    view.model.set_footprints(Footprints(rings, c, np.c_[c - d, c + d]))
    qtbot.waitUntil(lambda: view.drawn_as == "density", timeout=5000)
    img = view.tile_density.image
    assert img.ndim == 3 and img.shape[2] == 4 and (img[..., 3] > 0).mean() > 0.2
    assert view.n_drawn == n
    view.show_area((5, 55, 5.05, 55.05))  # zoomed in: a few tiles, outlined
    qtbot.waitUntil(lambda: view.drawn_as == "outlines", timeout=5000)
    assert not view.tile_density.isVisible() and 0 < view.n_drawn < 500


def test_density_image_counts_the_centres_in_their_cells():
    centres = np.array([[0.5, 0.5], [0.6, 0.4], [1.5, 1.5], [np.nan, np.nan], [5, 5]])
    img = density_rgba(centres, (0, 0, 2, 2), (2, 2), (10, 20, 30))
    alpha = img[..., 3]
    assert alpha[0, 0] > alpha[1, 1] > 0, "two centres south-west, one north-east (row 0: south)"
    assert alpha[0, 1] == 0 and alpha[1, 0] == 0
    assert (img[..., :3] == (10, 20, 30)).all()


def test_tile_at_prefers_the_footprint_under_the_pointer():
    ring = lambda x, y: [(x, y), (x + 1, y), (x + 1, y + 1), (x, y + 1), (x, y)]  # noqa: E731
    rings = np.array([ring(0, 0), ring(1.2, 0)], float)
    centres = rings[:, :4].mean(axis=1)
    fp = Footprints(rings, centres, np.c_[rings[:, :, 0].min(1), rings[:, :, 1].min(1),
                                          rings[:, :, 0].max(1), rings[:, :, 1].max(1)])  # fmt: skip
    model = MapModel()
    model.set_footprints(fp)
    assert model.tile_at(0.95, 0.5, 0.3, 0.3) == 0, "inside tile 0, though tile 1 is near"
    assert model.tile_at(1.25, 0.5, 0.3, 0.3) == 1
    assert model.tile_at(5, 5, 0.3, 0.3) is None
    seen = []
    model.selection_changed.connect(seen.append)
    model.select(1)
    model.select(1)
    assert seen == [1], "a selection is announced once"
