"""What the map shows, as plain data and plain callbacks: no Qt here.

:class:`MapModel` holds the archive's tile footprints (as arrays ready to draw), the ranked
results, the query, the selected tile, the search area and the archive's overview images. The
map view (:mod:`rsgui.app.panels.map_view`) observes it and draws; the result grid observes its
selection, so the grid and the map select together without knowing each other (napari's
model/view pattern). The geometry helpers (visible tiles, hit tests, image placement) are numpy
only, so tests and headless code use them without a display.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rsgui.progress import Job, Progress

Area = tuple[float, float, float, float]  # west, south, east, north in degrees
WORLD_FILE = Path(__file__).resolve().parents[1] / "resources" / "world_110m.json"


class Emitter:
    """A minimal Qt-free signal: ``connect(callback)``, ``emit(*args)``. Callbacks run in the
    emitting thread (the GUI thread: the model is only changed there)."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        if slot not in self._slots:
            self._slots.append(slot)

    def disconnect(self, slot: Callable[..., Any]) -> None:
        if slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)


# --- geometry -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Footprints:
    """Lon/lat geometry of every tile of an archive, as arrays (one row per archive record).

    ``rings``: (n, R, 2) closed rings padded with NaN (R: the longest ring); ``centres``: (n, 2);
    ``bounds``: (n, 4) west, south, east, north. NaN rows: the tile has no georeference."""

    rings: np.ndarray
    centres: np.ndarray
    bounds: np.ndarray

    @classmethod
    def empty(cls) -> Footprints:
        return cls(np.zeros((0, 1, 2)), np.zeros((0, 2)), np.zeros((0, 4)))

    def __len__(self) -> int:
        return len(self.centres)

    @property
    def placed(self) -> np.ndarray:
        """(n,) bool: the tile has a position."""
        return np.isfinite(self.centres).all(axis=1)

    @property
    def n_placed(self) -> int:
        return int(self.placed.sum())

    def extent(self) -> Area | None:
        """The box around every placed footprint, or None when no tile is placed."""
        ok = np.isfinite(self.bounds).all(axis=1)
        if not ok.any():
            return None
        b = self.bounds[ok]
        return (
            float(b[:, 0].min()),
            float(b[:, 1].min()),
            float(b[:, 2].max()),
            float(b[:, 3].max()),
        )

    def visible(self, area: Area) -> np.ndarray:
        """Positions of the tiles whose box meets ``area`` (what a view of ``area`` draws)."""
        w, s, e, n = area
        b = self.bounds
        with np.errstate(invalid="ignore"):
            meets = (b[:, 0] <= e) & (b[:, 2] >= w) & (b[:, 1] <= n) & (b[:, 3] >= s)
        return np.flatnonzero(meets)

    def outline_xy(self, which: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Flat x, y arrays of the rings of ``which`` (default: all), separated by NaN: one
        curve draws every outline (pyqtgraph ``connect="finite"``)."""
        rings = self.rings if which is None else self.rings[which]
        if len(rings) == 0:
            return np.zeros(0), np.zeros(0)
        pad = np.full((len(rings), 1, 2), np.nan)
        flat = np.concatenate([rings, pad], axis=1).reshape(-1, 2)
        return flat[:, 0], flat[:, 1]

    def contains(self, i: int, lon: float, lat: float) -> bool:
        """Whether the point lies inside tile ``i``'s footprint (even-odd rule)."""
        ring = self.rings[i]
        ring = ring[np.isfinite(ring).all(axis=1)]
        return len(ring) >= 3 and point_in_ring(ring, lon, lat)


def point_in_ring(ring: np.ndarray, x: float, y: float) -> bool:
    """Even-odd test of a point against a closed or open polygon ring (m, 2)."""
    xs, ys = ring[:, 0], ring[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = ((ys > y) != (yj > y)) & (x < (xj - xs) * (y - ys) / (yj - ys) + xs)
    return bool(np.count_nonzero(cross) % 2)


def footprints_of(records: Sequence, chunk: int = 20_000) -> Job[Footprints]:
    """:class:`Footprints` of archive records (a job: millions of records take seconds)."""
    n = len(records)
    width = 5
    for r in records[: min(n, 1000)]:  # footprints are 5-point rings; wider ones are kept whole
        ring = r.georef.footprint_lonlat
        if ring:
            width = max(width, len(ring))
    rings = np.full((n, width, 2), np.nan)
    centres = np.full((n, 2), np.nan)
    for a in range(0, n, chunk):
        yield Progress(a, n, "placing tiles on the map", stage="map")
        for i in range(a, min(n, a + chunk)):
            g = records[i].georef
            ring = g.footprint_lonlat
            if ring:
                if len(ring) > rings.shape[1]:  # a denser ring than sampled: widen the table
                    wider = np.full((n, len(ring), 2), np.nan)
                    wider[:, : rings.shape[1]] = rings
                    rings = wider
                rings[i, : len(ring)] = ring
            if g.center_lonlat:
                centres[i] = g.center_lonlat
            elif ring:
                centres[i] = np.mean(np.asarray(ring[:-1], float), axis=0)
    bounds = np.zeros((0, 4))
    if n:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no footprint
            lon, lat = rings[:, :, 0], rings[:, :, 1]
            bounds = np.stack(
                [np.nanmin(lon, 1), np.nanmin(lat, 1), np.nanmax(lon, 1), np.nanmax(lat, 1)], 1
            )
    # a tile with a centre but no ring is a point
    point = np.isnan(bounds[:, 0]) & np.isfinite(centres[:, 0]) if n else np.zeros(0, bool)
    if point.any():
        bounds[point] = np.concatenate([centres[point], centres[point]], axis=1)
    return Footprints(rings, centres, bounds)


def density_rgba(
    centres: np.ndarray, area: Area, shape: tuple[int, int], rgb: tuple[int, int, int]
) -> np.ndarray:
    """(h, w, 4) uint8 image of how many ``centres`` fall in each cell of ``area`` (row 0: the
    south edge): empty cells transparent, the others in ``rgb`` from faint to opaque on a log
    scale. What the map draws for more tiles than points can show (a million stay interactive)."""
    h, w = max(1, int(shape[0])), max(1, int(shape[1]))
    x0, y0, x1, y1 = area
    c = np.asarray(centres, float).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        cx = np.floor((c[:, 0] - x0) / max(x1 - x0, 1e-12) * w)
        cy = np.floor((c[:, 1] - y0) / max(y1 - y0, 1e-12) * h)
        ok = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
    counts = np.bincount(cy[ok].astype(np.int64) * w + cx[ok].astype(np.int64), minlength=h * w)
    counts = counts.reshape(h, w)
    out = np.zeros((h, w, 4), np.uint8)
    out[..., :3] = rgb
    if counts.max(initial=0) > 0:
        level = np.log1p(counts) / np.log1p(counts.max())
        out[..., 3] = np.where(counts > 0, 70 + 185 * level, 0).astype(np.uint8)
    return out


def corner_transform(shape: tuple[int, ...], corners: Sequence) -> tuple[float, ...]:
    """``(m11, m12, m21, m22, dx, dy)`` of the affine map (QTransform's order) taking an image of
    ``shape`` (H, W, ...) in row-major pixel coordinates (x: column, y: row, origin at the upper
    left) onto its lon/lat ``corners`` (upper-left, upper-right, lower-right, lower-left); the
    lower-right corner follows from the other three (a scene's overview is a parallelogram at
    this scale)."""
    h, w = int(shape[0]), int(shape[1])
    (ulx, uly), (urx, ury), _lr, (llx, lly) = [(float(x), float(y)) for x, y in corners]
    return ((urx - ulx) / w, (ury - uly) / w, (llx - ulx) / h, (lly - uly) / h, ulx, uly)


def load_world(path: Path = WORLD_FILE) -> list[np.ndarray]:
    """The coarse world outline (Natural Earth 110m, public domain): a list of (m, 2) lon/lat
    rings; [] when the file is missing (the map then says so)."""
    import json

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return [np.asarray(r, float) for r in doc["rings"] if len(r) >= 2]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def rings_xy(rings: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flat NaN-separated x, y of a list of rings (one curve draws them all)."""
    if not rings:
        return np.zeros(0), np.zeros(0)
    nan = np.full((1, 2), np.nan)
    flat = np.concatenate([p for r in rings for p in (np.asarray(r, float), nan)])
    return flat[:, 0], flat[:, 1]


def clip_area(area: Sequence[float]) -> Area | None:
    """``area`` as (west, south, east, north) inside lon/lat limits; None when it is empty."""
    w, s, e, n = (float(v) for v in area)
    w, e = sorted((w, e))
    s, n = sorted((s, n))
    w, e = max(-180.0, w), min(180.0, e)
    s, n = max(-90.0, s), min(90.0, n)
    if not (np.isfinite([w, s, e, n]).all() and w < e and s < n):
        return None
    return (w, s, e, n)


# --- the model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResultMark:
    """One ranked result on the map: its archive position (None: a file outside the archive),
    rank and lon/lat centre and ring (None: not placed)."""

    rank: int
    archive_index: int | None
    centre: tuple[float, float] | None
    ring: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Overview:
    """An overview image of a scene archive and where its corners lie (lon/lat)."""

    rgb: np.ndarray  # (H, W, 3) uint8
    corners: tuple[tuple[float, float], ...]  # upper-left, upper-right, lower-right, lower-left


AREA_SOURCES = {"view": "visible map", "rectangle": "drawn rectangle"}


class MapModel:
    """The map's state. Events (plain callbacks, see :class:`Emitter`):

    - ``footprints_changed()``: a new archive (or none) is placed;
    - ``results_changed()``: the ranked results or the query changed;
    - ``selection_changed(archive_index | None)``: the selected tile changed (grid, map, browser);
    - ``area_changed()``: the search area, its source or whether it filters the search changed;
    - ``overviews_changed()``: the archive's overview images arrived.
    """

    def __init__(self) -> None:
        self.footprints = Footprints.empty()
        self.n_tiles = 0  # records in the archive (placed or not)
        self.placing = False  # footprints are being computed
        self.results: list[ResultMark] = []
        self.query_ring: np.ndarray | None = None
        self.query_centre: tuple[float, float] | None = None
        self.selected: int | None = None
        self.overviews: list[Overview] = []
        self.view_area: Area | None = None  # what the map shows now
        self.rectangle: Area | None = None  # a drawn rectangle
        self.area_source = "view"
        self.area_enabled = False
        self.area_count: int | None = None  # archive tiles the area filter leaves
        self.footprints_changed = Emitter()
        self.results_changed = Emitter()
        self.selection_changed = Emitter()
        self.area_changed = Emitter()
        self.overviews_changed = Emitter()

    # --- archive ------------------------------------------------------------------------------
    def set_footprints(self, footprints: Footprints | None, n_tiles: int | None = None) -> None:
        self.footprints = footprints if footprints is not None else Footprints.empty()
        self.n_tiles = len(self.footprints) if n_tiles is None else int(n_tiles)
        self.placing = False
        self.selected = None
        self.results = []
        self.query_ring = self.query_centre = None
        self.overviews = []
        self._count_area()
        self.footprints_changed.emit()
        self.results_changed.emit()
        self.area_changed.emit()

    def set_overviews(self, items: Sequence) -> None:
        """``items``: ``(rgb, corners)`` pairs as ``Archive.overviews`` returns them."""
        out = []
        for rgb, corners in items or ():
            rgb = np.asarray(rgb)
            if rgb.ndim == 3 and rgb.shape[2] in (3, 4) and len(corners) == 4:
                out.append(Overview(rgb, tuple((float(x), float(y)) for x, y in corners)))
        self.overviews = out
        self.overviews_changed.emit()

    @property
    def georeferenced(self) -> bool:
        return self.footprints.n_placed > 0

    def status_text(self) -> str:
        """What the map says about the archive's positions, plainly."""
        n, placed = self.n_tiles, self.footprints.n_placed
        if self.placing:
            return f"Placing {n:,} tiles on the map…"
        if n == 0:
            return "No archive open: the map shows the world outline only."
        if placed == 0:
            return (
                f"None of the {n:,} tiles of this archive has a georeference (for example EuroSAT "
                "RGB JPEGs carry none), so no tile can be placed on the map."
            )
        if placed < n:
            return f"{placed:,} of {n:,} tiles placed; {n - placed:,} have no georeference."
        return f"{n:,} tiles placed."

    # --- results ------------------------------------------------------------------------------
    def set_results(self, rows: Sequence, query=None, query_ring=None) -> None:
        """Ranked results (:class:`rsgui.services.search.SearchResult` rows) and the query (a
        tile ref): archive tiles are placed from the footprints, other files from the ring
        their rows carry (``footprint``, from :func:`rsgui.services.search.locate`)."""
        fp = self.footprints
        marks = []
        for r in rows or ():
            aidx = getattr(r, "archive_index", None)
            ring = centre = None
            if aidx is not None and 0 <= aidx < len(fp) and fp.placed[aidx]:
                ring = fp.rings[aidx]
                centre = (float(fp.centres[aidx, 0]), float(fp.centres[aidx, 1]))
            elif getattr(r, "footprint", None):
                ring = np.asarray(r.footprint, float)
                centre = tuple(np.mean(ring[:-1], axis=0).tolist())
            marks.append(ResultMark(int(r.rank), aidx, centre, ring))
        self.results = marks
        self.query_ring = self.query_centre = None
        qidx = getattr(query, "archive_index", None) if query is not None else None
        if qidx is not None and 0 <= qidx < len(fp) and fp.placed[qidx]:
            self.query_ring = fp.rings[qidx]
            self.query_centre = (float(fp.centres[qidx, 0]), float(fp.centres[qidx, 1]))
        elif query_ring is not None:
            self.query_ring = np.asarray(query_ring, float)
            self.query_centre = tuple(np.mean(self.query_ring[:-1], axis=0).tolist())
        self.results_changed.emit()

    @property
    def placed_results(self) -> list[ResultMark]:
        return [m for m in self.results if m.centre is not None]

    def results_extent(self) -> Area | None:
        pts = [m.centre for m in self.placed_results]
        if self.query_centre is not None:
            pts.append(self.query_centre)
        if not pts:
            return None
        a = np.asarray(pts)
        return (
            float(a[:, 0].min()),
            float(a[:, 1].min()),
            float(a[:, 0].max()),
            float(a[:, 1].max()),
        )

    # --- selection ----------------------------------------------------------------------------
    def select(self, archive_index: int | None) -> None:
        """Select a tile of the archive (None: nothing); observers follow."""
        if archive_index is not None:
            archive_index = int(archive_index)
        if archive_index == self.selected:
            return
        self.selected = archive_index
        self.selection_changed.emit(archive_index)

    def tile_at(self, lon: float, lat: float, tol_lon: float, tol_lat: float) -> int | None:
        """The archive tile a click at (lon, lat) means: a result marker within the tolerance
        (results are drawn on top), else the footprint under the point, else the nearest centre
        within the tolerance (a tile drawn as a point). None: nothing there."""
        tol_lon, tol_lat = max(tol_lon, 1e-12), max(tol_lat, 1e-12)
        best, best_d = None, np.inf
        for m in self.placed_results:
            if m.archive_index is None:
                continue
            d = np.hypot((m.centre[0] - lon) / tol_lon, (m.centre[1] - lat) / tol_lat)
            if d <= 1 and d < best_d:
                best, best_d = m.archive_index, d
        if best is not None:
            return best
        fp = self.footprints
        if not len(fp):
            return None
        near = fp.visible((lon - tol_lon, lat - tol_lat, lon + tol_lon, lat + tol_lat))
        if not len(near):
            return None
        inside = [int(i) for i in near if fp.contains(int(i), lon, lat)]
        cand = np.asarray(inside) if inside else near
        d = np.hypot((fp.centres[cand, 0] - lon) / tol_lon, (fp.centres[cand, 1] - lat) / tol_lat)
        j = int(np.argmin(d))
        if not inside and d[j] > 1.5:
            return None
        return int(cand[j])

    # --- the search area ----------------------------------------------------------------------
    def set_view_area(self, area: Sequence[float] | None) -> None:
        self.view_area = None if area is None else clip_area(area)
        if self.area_source == "view":
            self._count_area()
            self.area_changed.emit()

    def set_rectangle(self, area: Sequence[float] | None) -> None:
        self.rectangle = None if area is None else clip_area(area)
        if self.area_source == "rectangle":
            self._count_area()
            self.area_changed.emit()

    def set_area_source(self, source: str) -> None:
        if source not in AREA_SOURCES:
            raise ValueError(
                f"unknown area source {source!r}; choose from {', '.join(AREA_SOURCES)}"
            )
        self.area_source = source
        self._count_area()
        self.area_changed.emit()

    def set_area_enabled(self, on: bool) -> None:
        if bool(on) != self.area_enabled:
            self.area_enabled = bool(on)
            self._count_area()
            self.area_changed.emit()

    @property
    def area(self) -> Area | None:
        """The box of the chosen source (the visible map or the drawn rectangle)."""
        return self.rectangle if self.area_source == "rectangle" else self.view_area

    @property
    def search_area(self) -> Area | None:
        """The box the search is restricted to, or None when the filter is off."""
        return self.area if self.area_enabled else None

    def _count_area(self) -> None:
        """Archive tiles whose centre lies in the area (the rule of the search's filter)."""
        area = self.area
        if area is None:
            self.area_count = None
            return
        from rsgui.services.search import centres_in_area

        self.area_count = int(centres_in_area(self.footprints.centres, area).sum())

    def area_text(self) -> str:
        area = self.area
        if area is None:
            return "no area"
        w, s, e, n = area
        where = f"{_deg(w, 'E', 'W')} to {_deg(e, 'E', 'W')}, {_deg(s, 'N', 'S')} to {_deg(n, 'N', 'S')}"
        count = self.area_count or 0
        total = self.n_tiles
        if self.area_enabled:
            return f"Search limited to {count:,} of {total:,} tiles ({AREA_SOURCES[self.area_source]}: {where})"
        return f"{count:,} of {total:,} tiles in the {AREA_SOURCES[self.area_source]} ({where})"


def _deg(v: float, pos: str, neg: str) -> str:
    """``12.50° E`` / ``3.20° W``: hemispheres named, no signed degrees."""
    return f"{abs(v):.2f}° {pos if v >= 0 else neg}"
