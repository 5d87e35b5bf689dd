"""The map: where the archive's tiles, the query and the ranked results lie, in lon/lat.

A pyqtgraph plot over a coarse world outline (Natural Earth 110m, public domain, bundled): the
archive's footprints as light outlines, or as points when zoomed out or too many to outline
(one curve of NaN-separated rings, one scatter of centres: a million tiles stay responsive, only
the visible ones are handed to the item); a scene archive's overview images beneath them; the
results coloured by rank (colour bar beside the map); the query in red; the selected tile
circled. Click a footprint to show that tile; the result grid follows through the Qt-free
:class:`rsgui.app.map_model.MapModel`, which also holds the search area (the visible map or a
drawn rectangle) that the Search panel restricts its search to.

Everything slow (placing a million footprints, reading overviews) runs in a worker; the widget
only draws what the model holds.
"""

from __future__ import annotations

import atexit
import logging
import math
import weakref
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QTransform
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from rsgui.app.map_model import (
    AREA_SOURCES,
    MapModel,
    corner_transform,
    density_rgba,
    footprints_of,
    load_world,
    rings_xy,
)
from rsgui.app.state import AppState

log = logging.getLogger(__name__)

OUTLINE_LIMIT = 30_000  # more visible tiles than this are drawn as points
POINT_LIMIT = 20_000  # more visible centres than this are drawn as a density image
DENSITY_CELL_PX = 3  # screen pixels per cell of the density image
MIN_OUTLINE_PX = 3.0  # a tile narrower than this on screen is drawn as a point
CLICK_TOLERANCE_PX = 7.0
RANK_COLORMAP = "viridis"
TILE_COLOUR = QColor(40, 90, 160)
QUERY_COLOUR = QColor("#d32f2f")
SELECTED_COLOUR = QColor("#ff00c8")
LAND_COLOUR = QColor(120, 120, 120)


_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _delete_plots() -> None:
    """Delete the maps' plot widgets while Python still runs: a map left open at interpreter
    exit (a script that never closes its window) otherwise crashes Qt's own teardown, which
    calls into pyqtgraph items after Python is gone."""
    import shiboken6

    for view in list(_LIVE):
        graphics = getattr(view, "graphics", None)
        try:
            if graphics is not None and shiboken6.isValid(graphics):
                shiboken6.delete(graphics)
        except RuntimeError:
            pass


def rank_colours(ranks: np.ndarray, k: int) -> np.ndarray:
    """(n, 4) uint8 RGBA of ranks 1..k on :data:`RANK_COLORMAP` (rank 1: its dark end)."""
    cmap = pg.colormap.get(RANK_COLORMAP)
    t = (np.asarray(ranks, float) - 1) / max(1, k - 1)
    return cmap.map(np.clip(t, 0, 1), mode="byte")


class MapView(QWidget):
    """The map panel (a dock beside the Search results). ``model`` is shared with the Search
    panel, so both select together and the search sees the area."""

    def __init__(self, state: AppState, model: MapModel | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("mapView")
        _LIVE.add(self)
        self.state = state
        self.model = model or MapModel()
        self._archive = None
        self._fitted = False
        self._target = None  # the area last asked for, kept through resizes until the user pans
        self._task = None
        self._note = ""

        # controls
        self.fit_archive_button = QPushButton("Fit archive")
        self.fit_archive_button.setToolTip("Zoom to the archive's extent")
        self.fit_results_button = QPushButton("Fit results")
        self.fit_results_button.setToolTip("Zoom to the query and its results")
        self.world_button = QPushButton("World")
        self.area_check = QCheckBox("Search only in")
        self.area_check.setObjectName("mapAreaCheck")
        self.area_check.setToolTip(
            "Rank only the tiles whose centre lies in this area (tiles without georeference are "
            "left out)"
        )
        self.area_combo = QComboBox()
        for key, text in AREA_SOURCES.items():
            self.area_combo.addItem(text, key)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.fit_archive_button, self.fit_results_button, self.world_button):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.area_check)
        row.addWidget(self.area_combo)
        self.message = QLabel("")
        self.message.setObjectName("mapMessage")
        self.message.setWordWrap(True)
        self.area_label = QLabel("")
        self.area_label.setObjectName("mapAreaLabel")
        self.area_label.setWordWrap(True)
        self.coords = QLabel("")
        self.coords.setStyleSheet("color: palette(mid);")

        # the plot
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.plot = self.graphics.addPlot(row=0, col=0)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        for side, text in (("bottom", "longitude (°)"), ("left", "latitude (°)")):
            ax = self.plot.getAxis(side)
            ax.setLabel(text)
            ax.setPen(pg.mkPen(90, 90, 90))
            ax.setTextPen(pg.mkPen(40, 40, 40))
        self.vb = self.plot.getViewBox()
        self.vb.setAspectLocked(True, ratio=1.0)
        self.vb.setLimits(xMin=-200, xMax=200, yMin=-100, yMax=100)
        self.colorbar = pg.ColorBarItem(
            values=(1, 20), colorMap=pg.colormap.get(RANK_COLORMAP), interactive=False, width=14, colorMapMenu=False,
        )  # fmt: skip
        self.colorbar.getAxis("right").setTextPen(pg.mkPen(40, 40, 40))
        self.colorbar.getAxis("right").setLabel("rank", color="#333")
        self.colorbar.getAxis("right").setPen(pg.mkPen(90, 90, 90))
        self.graphics.addItem(self.colorbar, row=0, col=1)
        self.colorbar.setVisible(False)
        # the legend sits below the map, never over the tiles it explains
        self.legend = pg.LegendItem(colCount=4, labelTextColor=(30, 30, 30), verSpacing=-6)
        self.graphics.addItem(self.legend, row=1, col=0, colspan=2)

        self.world = pg.PlotCurveItem(connect="finite", pen=pg.mkPen(LAND_COLOUR, width=1))
        self.world.setZValue(-20)
        self.plot.addItem(self.world)
        self.overview_items: list[pg.ImageItem] = []
        tile_pen = pg.mkPen(TILE_COLOUR.red(), TILE_COLOUR.green(), TILE_COLOUR.blue(), 150)
        self.tile_outlines = pg.PlotCurveItem(connect="finite", pen=tile_pen, name="archive tiles")
        self.tile_points = pg.ScatterPlotItem(
            size=5, pen=None, brush=pg.mkBrush(TILE_COLOUR.red(), TILE_COLOUR.green(),
                                               TILE_COLOUR.blue(), 150), name="archive tiles",
        )  # fmt: skip
        self.tile_density = pg.ImageItem(axisOrder="row-major")
        for item in (self.tile_outlines, self.tile_points, self.tile_density):
            item.setZValue(0)
            self.plot.addItem(item)
        self.result_outlines: list[pg.PlotCurveItem] = []
        self.result_points = pg.ScatterPlotItem(size=11, pen=pg.mkPen(30, 30, 30, width=1))
        self.result_points.setZValue(10)
        self.plot.addItem(self.result_points)
        self.query_outline = pg.PlotCurveItem(pen=pg.mkPen(QUERY_COLOUR, width=3))
        self.query_point = pg.ScatterPlotItem(
            size=20, symbol="star", pen=pg.mkPen("w", width=1), brush=pg.mkBrush(QUERY_COLOUR),
            name="query",
        )  # fmt: skip
        self.selected_outline = pg.PlotCurveItem(pen=pg.mkPen(SELECTED_COLOUR, width=3))
        self.selected_point = pg.ScatterPlotItem(
            size=24, symbol="o", pen=pg.mkPen(SELECTED_COLOUR, width=3), brush=None,
            name="selected",
        )  # fmt: skip
        for z, item in enumerate(
            (self.query_outline, self.query_point, self.selected_outline, self.selected_point)
        ):
            item.setZValue(12 + z)
            self.plot.addItem(item)
        self.legend.addItem(self.tile_points, "archive tiles")
        self._legend_results = pg.ScatterPlotItem(
            size=10, pen=pg.mkPen(30, 30, 30), brush=pg.mkBrush(*rank_colours(np.array([1]), 3)[0])
        )
        self.plot.addItem(self._legend_results)  # empty; in the scene (pyqtgraph's exit cleanup)
        self.legend.addItem(self._legend_results, "results (colour: rank)")
        self.legend.addItem(self.query_point, "query")
        self.legend.addItem(self.selected_point, "selected")
        self.rect_roi = pg.RectROI(
            [0, 0], [1, 1], pen=pg.mkPen("#ef6c00", width=2, style=Qt.PenStyle.DashLine),
            movable=True, removable=False,
        )  # fmt: skip
        self.rect_roi.setZValue(30)
        self.rect_roi.setVisible(False)
        self.plot.addItem(self.rect_roi)
        self.empty_text = pg.TextItem(
            "", color=(190, 80, 0), anchor=(0.5, 0.5), fill=pg.mkBrush(255, 255, 255, 225),
            border=pg.mkPen(190, 80, 0),
        )  # fmt: skip
        self.empty_text.setZValue(40)
        self.plot.addItem(self.empty_text)

        self.graphics.setMinimumHeight(230)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.message)
        lay.addWidget(self.graphics, 1)
        lay.addWidget(self.area_label)
        lay.addWidget(self.coords)

        self._lod_timer = QTimer(self)
        self._lod_timer.setSingleShot(True)
        self._lod_timer.setInterval(60)
        self._lod_timer.timeout.connect(self._view_settled)

        # wiring: user intent goes to the model or the state; the model's events redraw
        self.fit_archive_button.clicked.connect(self.fit_archive)
        self.fit_results_button.clicked.connect(self.fit_results)
        self.world_button.clicked.connect(lambda: self.show_area((-180, -60, 180, 80)))
        self.area_check.toggled.connect(self.model.set_area_enabled)
        self.area_combo.activated.connect(
            lambda _i: self.model.set_area_source(str(self.area_combo.currentData()))
        )
        self.rect_roi.sigRegionChangeFinished.connect(self._rectangle_moved)
        self.vb.sigRangeChanged.connect(lambda *_: self._lod_timer.start())
        self.vb.sigResized.connect(self._resized)
        self.vb.sigRangeChangedManually.connect(self._user_moved)
        self.plot.scene().sigMouseClicked.connect(self._scene_clicked)
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        self.model.footprints_changed.connect(self._footprints_changed)
        self.model.results_changed.connect(self._results_drawn)
        self.model.selection_changed.connect(self._selection_drawn)
        self.model.area_changed.connect(self._area_drawn)
        self.model.overviews_changed.connect(self._overviews_drawn)
        state.archiveChanged.connect(self._archive_changed)
        state.resultsChanged.connect(self._results_changed)
        state.queryChanged.connect(lambda _ref: self._results_changed())
        state.tileSelected.connect(self._tile_selected)

        self._draw_world()
        self._archive_changed()

    # --- archive ------------------------------------------------------------------------------
    def _archive_changed(self) -> None:
        archive = self.state.archive
        self._archive = archive
        self._fitted = False
        self.model.set_footprints(None, 0 if archive is None else len(archive))
        if archive is None:
            return
        self.model.placing = True
        self._show_message()
        self._task = self.state.tasks.start(
            footprints_of, archive.records, name="Place tiles on the map", key="map-footprints",
            on_returned=lambda fp, a=archive: self._footprints_ready(a, fp),
        )  # fmt: skip

    def _footprints_ready(self, archive, footprints) -> None:
        if archive is not self.state.archive:  # another archive was opened meanwhile
            return
        self.model.set_footprints(footprints, len(archive))
        self._results_changed()
        overviews = getattr(archive, "overviews", None)  # scene archives only (and newer code)
        if callable(overviews):
            self.state.tasks.start(
                overviews, max_side=1024, name="Read overview images", key="map-overviews",
                on_returned=lambda items, a=archive: a is self.state.archive
                and self.model.set_overviews(items),
                on_error=lambda exc: log.info("no overview images: %s", exc),
            )  # fmt: skip

    def _footprints_changed(self) -> None:
        fp = self.model.footprints
        self._show_message()
        if fp.n_placed:
            mid = np.nanmedian(fp.centres[:, 1])
            self.vb.setAspectLocked(True, ratio=max(0.2, math.cos(math.radians(float(mid)))))
            self.empty_text.setText("")
            self.legend.setVisible(True)
            if not self._fitted:
                self.fit_archive()
                self._fitted = True
        else:
            self.vb.setAspectLocked(True, ratio=1.0)
            self.show_area((-180, -60, 180, 80))
            self.legend.setVisible(False)
            if self.model.n_tiles and not self.model.placing:
                self.empty_text.setText("No tile of this archive has a georeference")
                self.empty_text.setPos(0, 10)
            else:
                self.empty_text.setText("")
        self._draw_tiles()
        self._overviews_drawn()

    def _show_message(self) -> None:
        text = self.model.status_text()
        if self._note:
            text += " " + self._note
        warn = self.model.n_tiles and not self.model.georeferenced and not self.model.placing
        self.message.setStyleSheet("color: #ef6c00; font-weight: bold;" if warn else "")
        self.message.setText(text)

    def _draw_world(self) -> None:
        rings = load_world()
        x, y = rings_xy(rings)
        self.world.setData(x, y, connect="finite")
        self._note = "" if rings else "(The world outline file is missing from this installation.)"

    # --- level of detail ----------------------------------------------------------------------
    def view_area(self) -> tuple[float, float, float, float]:
        (x0, x1), (y0, y1) = self.vb.viewRange()
        return (x0, y0, x1, y1)

    def _view_settled(self) -> None:
        self.model.set_view_area(self.view_area())
        self._draw_tiles()

    def _draw_tiles(self) -> None:
        """The visible tiles: outlines when few and wide enough on screen, else their centres as
        points, else (past :data:`POINT_LIMIT`) a density image of the centres."""
        fp = self.model.footprints
        self.drawn_as = "none"
        self.n_drawn = 0
        self.tile_outlines.setData([], [])
        self.tile_points.setData([], [])
        self.tile_density.setVisible(False)
        if not fp.n_placed:
            return
        area = self.view_area()
        vis = fp.visible(area)
        px_w, _px_h = self.vb.viewPixelSize()
        sample = vis[:: max(1, len(vis) // 500)] if len(vis) else vis
        widths = fp.bounds[sample, 2] - fp.bounds[sample, 0] if len(sample) else np.zeros(0)
        wide = bool(len(widths)) and float(np.median(widths)) / max(px_w, 1e-12) >= MIN_OUTLINE_PX
        if len(vis) <= OUTLINE_LIMIT and wide:
            x, y = fp.outline_xy(vis)
            self.tile_outlines.setData(x, y, connect="finite")
            self.drawn_as = "outlines"
        elif len(vis) <= POINT_LIMIT:
            self.tile_points.setData(fp.centres[vis, 0], fp.centres[vis, 1])
            self.drawn_as = "points"
        else:
            rect = self.vb.boundingRect()
            shape = (rect.height() / DENSITY_CELL_PX, rect.width() / DENSITY_CELL_PX)
            rgb = (TILE_COLOUR.red(), TILE_COLOUR.green(), TILE_COLOUR.blue())
            self.tile_density.setImage(density_rgba(fp.centres[vis], area, shape, rgb))
            w, s, e, n = area
            self.tile_density.setRect(QRectF(w, s, e - w, n - s))
            self.tile_density.setVisible(True)
            self.drawn_as = "density"
        self.n_drawn = len(vis)

    # --- view ---------------------------------------------------------------------------------
    def _resized(self, *_args) -> None:
        if self._target is not None:  # a new size shows the same area, not the same scale
            self.show_area(*self._target)
        self._lod_timer.start()

    def _user_moved(self, *_args) -> None:
        self._target = None

    def show_area(self, area, pad: float = 0.05) -> None:
        """Show at least ``area`` (west, south, east, north) with a margin of ``pad``."""
        self._target = (tuple(area), pad)
        w, s, e, n = (float(v) for v in area)
        dx, dy = max(e - w, 0.02), max(n - s, 0.02)
        self.vb.setRange(
            QRectF(w - pad * dx, s - pad * dy, dx * (1 + 2 * pad), dy * (1 + 2 * pad)), padding=0
        )
        self._lod_timer.start()

    def fit_archive(self) -> None:
        extent = self.model.footprints.extent()
        self.show_area(extent if extent is not None else (-180, -60, 180, 80))

    def fit_results(self) -> None:
        extent = self.model.results_extent()
        if extent is not None:
            self.show_area(extent, pad=0.15)

    # --- results ------------------------------------------------------------------------------
    def _results_changed(self) -> None:
        res = self.state.results
        query = self.state.query if res is None else res.query
        rows = res.rows if res is not None else []
        self.model.set_results(rows, query)
        if query is not None and getattr(query, "archive_index", None) is None:
            self.state.tasks.start(
                _query_ring, Path(query.path), name="Place the query", key="map-query",
                on_returned=lambda ring, q=query: self._query_ring_ready(q, ring),
                on_error=lambda exc: None,
            )  # fmt: skip

    def _query_ring_ready(self, query, ring) -> None:
        res = self.state.results
        current = self.state.query if res is None else res.query
        if ring is not None and current == query:
            self.model.set_results(res.rows if res is not None else [], query, ring)

    def _results_drawn(self) -> None:
        for item in self.result_outlines:
            self.plot.removeItem(item)
        self.result_outlines = []
        marks = self.model.placed_results
        k = max((m.rank for m in self.model.results), default=1)
        if marks:
            ranks = np.array([m.rank for m in marks])
            colours = rank_colours(ranks, k)
            order = np.argsort(-ranks)  # rank 1 drawn last, on top
            pts = np.array([m.centre for m in marks])
            self.result_points.setData(
                pos=pts[order], brush=[pg.mkBrush(*colours[i]) for i in order],
                data=[marks[i].archive_index for i in order],
            )  # fmt: skip
            for i in order:
                ring = marks[i].ring
                if ring is None:
                    continue
                item = pg.PlotCurveItem(ring[:, 0], ring[:, 1], connect="finite",
                                        pen=pg.mkPen(*colours[i], width=2))  # fmt: skip
                item.setZValue(5)
                self.plot.addItem(item)
                self.result_outlines.append(item)
        else:
            self.result_points.setData([], [])
        self.colorbar.setLevels((1, max(k, 2)))
        self.colorbar.setVisible(bool(self.model.results))
        if self.model.query_ring is not None:
            ring = self.model.query_ring
            self.query_outline.setData(ring[:, 0], ring[:, 1], connect="finite")
            self.query_point.setData([self.model.query_centre[0]], [self.model.query_centre[1]])
        else:
            self.query_outline.setData([], [])
            self.query_point.setData([], [])
        n_res, n_placed = len(self.model.results), len(marks)
        if n_res and n_placed < n_res:
            self.coords.setText(f"{n_res - n_placed} of {n_res} results have no position")
        self._selection_drawn(self.model.selected)

    def result_colour(self, rank: int) -> QColor:
        """The colour rank ``rank`` is drawn in (tests and the legend read it)."""
        k = max((m.rank for m in self.model.results), default=1)
        return QColor(*rank_colours(np.array([rank]), k)[0])

    # --- selection ----------------------------------------------------------------------------
    def _tile_selected(self, ref) -> None:
        self.model.select(None if ref is None else ref.archive_index)

    def _selection_drawn(self, archive_index: int | None) -> None:
        fp = self.model.footprints
        if (
            archive_index is None
            or not (0 <= archive_index < len(fp))
            or not fp.placed[archive_index]
        ):
            self.selected_outline.setData([], [])
            self.selected_point.setData([], [])
            return
        ring = fp.rings[archive_index]
        self.selected_outline.setData(ring[:, 0], ring[:, 1], connect="finite")
        c = fp.centres[archive_index]
        self.selected_point.setData([c[0]], [c[1]])

    def _scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or event.double():
            return
        pos = event.scenePos()
        if not self.vb.sceneBoundingRect().contains(pos):
            return
        p = self.vb.mapSceneToView(pos)
        self.click_at(p.x(), p.y())

    def click_at(self, lon: float, lat: float) -> int | None:
        """What a click at (lon, lat) does: select the tile there and show it in the viewer."""
        px_w, px_h = self.vb.viewPixelSize()
        tol = CLICK_TOLERANCE_PX
        tile = self.model.tile_at(lon, lat, tol * px_w, tol * px_h)
        if tile is None or self.state.archive is None:
            return None
        self.model.select(tile)
        selected = self.state.selected
        if selected is None or selected.archive_index != tile:
            self.state.select_tile(self.state.tile_ref(tile))
        return tile

    def view_point(self, lon: float, lat: float) -> QPoint:
        """Where (lon, lat) lies in the plot widget's viewport (for tests that click)."""
        scene = self.vb.mapViewToScene(QPointF(lon, lat))
        return self.graphics.mapFromScene(scene)

    def _mouse_moved(self, pos) -> None:
        if self.vb.sceneBoundingRect().contains(pos):
            p = self.vb.mapSceneToView(pos)
            self.coords.setText(f"pointer at {lonlat_text(p.x(), p.y(), 4)}")

    # --- area ---------------------------------------------------------------------------------
    def _rectangle_moved(self) -> None:
        pos, size = self.rect_roi.pos(), self.rect_roi.size()
        self.model.set_rectangle((pos.x(), pos.y(), pos.x() + size.x(), pos.y() + size.y()))

    def _area_drawn(self) -> None:
        m = self.model
        rect = m.area_source == "rectangle"
        if rect and m.rectangle is None:  # a first rectangle: the middle of the view
            w, s, e, n = self.view_area()
            dx, dy = e - w, n - s
            self.rect_roi.blockSignals(True)
            self.rect_roi.setPos((w + dx / 4, s + dy / 4))
            self.rect_roi.setSize((dx / 2, dy / 2))
            self.rect_roi.blockSignals(False)
            self._rectangle_moved()
            return
        self.rect_roi.setVisible(rect)
        i = self.area_combo.findData(m.area_source)
        if i >= 0 and i != self.area_combo.currentIndex():
            self.area_combo.setCurrentIndex(i)
        if self.area_check.isChecked() != m.area_enabled:
            self.area_check.blockSignals(True)
            self.area_check.setChecked(m.area_enabled)
            self.area_check.blockSignals(False)
        self.area_label.setText(m.area_text() if m.georeferenced else "")
        self.area_label.setStyleSheet(
            "color: #ef6c00; font-weight: bold;" if m.area_enabled else ""
        )

    # --- overviews ----------------------------------------------------------------------------
    def _overviews_drawn(self) -> None:
        for item in self.overview_items:
            self.plot.removeItem(item)
        self.overview_items = []
        for ov in self.model.overviews:
            item = pg.ImageItem(ov.rgb, axisOrder="row-major")
            item.setTransform(QTransform(*corner_transform(ov.rgb.shape, ov.corners)))
            item.setZValue(-10)
            item.setOpacity(0.9)
            self.plot.addItem(item)
            self.overview_items.append(item)


def lonlat_text(lon: float, lat: float, digits: int = 2) -> str:
    """``48.58° N, 2.01° E`` (hemispheres named, no signed degrees)."""
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"{abs(lat):.{digits}f}° {ns}, {abs(lon):.{digits}f}° {ew}"


def _query_ring(path: Path):
    """The lon/lat ring of a query file outside the archive (its header only), or None."""
    from rsgui.archive import read_tile_file

    try:
        return read_tile_file(path, bands=[]).records[0].georef.footprint_lonlat
    except Exception:  # noqa: BLE001 - a file without georeference has no place on the map
        return None
