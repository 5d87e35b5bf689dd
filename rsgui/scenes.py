"""Sentinel-2 scenes as archives: a regular grid of windows, read on demand, never cut to files.

A scene is a multi-band GeoTIFF/COG, a ``.SAFE`` product or a set of per-band rasters named by
band (:mod:`rsgui.layouts` finds them). :func:`open_scenes` lays a grid of ``tile_size`` pixels
(at the finest band's resolution, 10 m) with ``stride`` over each scene, leaves out the tiles
that are mostly nodata (outside the swath), and hands the archive an
:class:`~rsgui.sources.OpenedSource`. Pixels are read by window: 20 m and 60 m bands are
resampled to the 10 m grid with a cubic spline when read (as EuroSAT was made), and a batch of
tiles in one grid row is read as one strip per band, so indexing runs at the speed of GDAL.

Opening reads headers and one decimated band per scene (1/8 of the side, for the nodata
screening); the grid, the screening and the footprints are cached in
``ARCHIVE/.rsgui/scenes-t<size>-s<stride>.json`` keyed by each file's size and mtime, so the
second open of a 10980x10980 scene (29,000 tiles) only lists, stats and loads.

Values: Sentinel-2 digital numbers, scaled like EuroSAT MS; 0 is Sentinel-2's nodata value, so a
scene without a nodata tag has 0 masked in the tiles kept.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsgui import manifest as mf
from rsgui import tiff_header as th
from rsgui.bands import PRESETS, S2_BANDS, file_band_names
from rsgui.errors import TileReadError
from rsgui.geo import georef_from_row, lonlat_rows
from rsgui.layouts import LayoutError, SceneSpec, scene_file_of
from rsgui.sources import OpenedSource
from rsgui.tiles import Problem, TileRecord

Progress = Callable[[int, int], None]

PRESET = "s2-scene"
NORMALISATION = PRESETS["eurosat-ms"].normalisation
DEFAULT_TILE = 64
DECIMATION = 8  # the nodata screening reads one 10 m band at 1/8 of its side
# A header can claim any size: the grid of one scene is bounded (a 10980-px scene in 64-px tiles
# with a stride of 8 px gives 1.9 million)
MAX_GRID = 4_000_000
INVALID_MAX = th.INVALID_MAX  # a tile more than half nodata is outside the swath: left out
CACHE_VERSION = 1
SCREEN_BANDS = ("B04", "B03", "B02", "B08")  # 10 m bands, the ones the screening prefers
RESAMPLING = "cubic_spline"


@dataclass
class _Band:
    """One band of a scene: where it is and on which grid."""

    name: str
    rel: str
    index: int  # 1-based band in its file
    transform: tuple[float, ...]  # affine a, b, c, d, e, f
    width: int
    height: int

    @property
    def res(self) -> float:
        return abs(self.transform[0])

    def to_json(self) -> list:
        return [self.name, self.rel, self.index, list(self.transform), self.width, self.height]

    @classmethod
    def from_json(cls, v: list) -> _Band:
        return cls(str(v[0]), str(v[1]), int(v[2]), tuple(float(x) for x in v[3]), int(v[4]),
                   int(v[5]))  # fmt: skip


@dataclass
class _Scene:
    """A scene's header facts (JSON-able), its kept grid cells and their georeference rows."""

    name: str
    main: str  # the file that stands for the scene
    bands: list[_Band]
    crs: str | None
    transform: tuple[float, ...]  # of the grid (finest band)
    width: int
    height: int
    dtype: str
    nodata: float | None
    band_source: str
    stats: list[list]  # [rel, size, mtime_ns] per file
    n_grid: int = 0
    rc: np.ndarray | None = None  # (n, 2) int64 row, col pixel offsets of kept tiles
    geo: np.ndarray | None = None  # (n, 16) bounds + lonlat rows

    def header(self) -> dict:
        return {
            "name": self.name, "main": self.main, "bands": [b.to_json() for b in self.bands],
            "crs": self.crs, "transform": list(self.transform), "width": self.width,
            "height": self.height, "dtype": self.dtype, "nodata": self.nodata,
            "band_source": self.band_source, "stats": self.stats, "n_grid": self.n_grid,
        }  # fmt: skip

    @classmethod
    def from_header(cls, h: dict) -> _Scene:
        return cls(
            h["name"], h["main"], [_Band.from_json(b) for b in h["bands"]], h["crs"],
            tuple(float(x) for x in h["transform"]), int(h["width"]), int(h["height"]),
            str(h["dtype"]), h["nodata"], h["band_source"], h["stats"], int(h["n_grid"]),
        )  # fmt: skip

    def band(self, name: str) -> _Band:
        return next(b for b in self.bands if b.name == name)

    def size_mtime(self) -> tuple[int, int]:
        return sum(int(s[1]) for s in self.stats), max(int(s[2]) for s in self.stats)


# ---------------------------------------------------------------------------- headers
def _open_error(root: Path, rel: str, e: BaseException) -> LayoutError:
    return LayoutError(f"{root / rel}: cannot be read as a scene band ({th.first_line(e)})")


def _scene_header(root: Path, spec: SceneSpec) -> _Scene:
    """Header facts of one scene (every band file opened once, no pixels read)."""
    import rasterio

    th.quiet_georeference_warnings()
    bands: list[_Band] = []
    crss: set[str | None] = set()
    dtype, nodata, source = "", None, "band file names"
    for band, rel, _res in spec.files:
        try:
            with rasterio.open(root / rel) as src:
                tf = tuple(src.transform)[:6]
                crs = src.crs.to_string() if src.crs else None
                crss.add(crs)
                if not dtype:
                    dtype, nodata = src.dtypes[0], src.nodata
                if band:
                    bands.append(_Band(band, rel, 1, tf, src.width, src.height))
                    continue
                names, source = file_band_names(src.descriptions, src.count)
                if names is None:  # pragma: no cover - no order given, so always named
                    raise LayoutError(f"{root / rel}: its bands cannot be named")
                bands += [_Band(n, rel, i + 1, tf, src.width, src.height)
                          for i, n in enumerate(names)]  # fmt: skip
        except LayoutError:
            raise
        except Exception as e:  # rasterio/GDAL raise many types for broken files
            raise _open_error(root, rel, e) from None
    if len(crss) > 1:
        raise LayoutError(
            f"{root / spec.name}: its band files are in different CRSs "
            f"({', '.join(sorted(str(c) for c in crss))}); a scene's bands share one grid"
        )
    if not spec.multiband:
        order = {b: i for i, b in enumerate(S2_BANDS)}
        bands.sort(key=lambda b: order.get(b.name, len(order)))
    base = min(bands, key=lambda b: b.res)
    if nodata is not None and not math.isfinite(nodata):
        nodata = None
    if nodata is None and np.dtype(dtype).kind in "iu":
        nodata = 0.0  # Sentinel-2's NODATA value (outside the swath)
    return _Scene(
        spec.name, scene_file_of(spec), bands, crss.pop(), base.transform, base.width,
        base.height, dtype, None if nodata is None else float(nodata), source,
        [list(s) for s in spec.stats],
    )  # fmt: skip


# ---------------------------------------------------------------------------- grid & screening
def grid(height: int, width: int, tile: int, stride: int) -> np.ndarray:
    """(n, 2) row, col offsets of every whole tile of a ``height`` x ``width`` grid, row-major;
    a partial tile at the right or bottom edge is left out."""
    rows = np.arange(0, height - tile + 1, stride, dtype=np.int64)
    cols = np.arange(0, width - tile + 1, stride, dtype=np.int64)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], axis=1)


def _screen_band(scene: _Scene) -> _Band:
    base_res = min(b.res for b in scene.bands)
    at_base = [b for b in scene.bands if b.res == base_res]
    return next((b for n in SCREEN_BANDS for b in at_base if b.name == n), at_base[0])


def invalid_fraction(
    scene: _Scene, root: Path, rc: np.ndarray, tile: int, factor: int = DECIMATION
) -> np.ndarray:
    """(n,) fraction of nodata (or 0, or NaN) pixels in each tile at ``rc``, estimated from one
    10 m band read at 1/``factor`` of its side (GDAL uses an overview when the file has one):
    deciding the swath costs 1/64 of the pixels of one band, not a read of the scene."""
    import rasterio
    from rasterio.enums import Resampling

    band = _screen_band(scene)
    oh = max(1, math.ceil(scene.height / factor))
    ow = max(1, math.ceil(scene.width / factor))
    try:
        with rasterio.Env(**th.GDAL_ENV), rasterio.open(root / band.rel) as src:
            small = src.read(band.index, out_shape=(oh, ow), resampling=Resampling.nearest)
    except Exception as e:  # rasterio/GDAL raise many types for broken files
        raise _open_error(root, band.rel, e) from None
    bad = small == 0
    if scene.nodata is not None:
        bad |= small == scene.nodata
    if small.dtype.kind == "f":
        bad |= ~np.isfinite(small)
    integral = np.zeros((oh + 1, ow + 1), dtype=np.int64)
    integral[1:, 1:] = bad.cumsum(0).cumsum(1)
    r0 = np.floor(rc[:, 0] * oh / scene.height).astype(np.int64)
    r1 = np.maximum(np.ceil((rc[:, 0] + tile) * oh / scene.height).astype(np.int64), r0 + 1)
    c0 = np.floor(rc[:, 1] * ow / scene.width).astype(np.int64)
    c1 = np.maximum(np.ceil((rc[:, 1] + tile) * ow / scene.width).astype(np.int64), c0 + 1)
    r1, c1 = np.minimum(r1, oh), np.minimum(c1, ow)
    count = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
    return count / ((r1 - r0) * (c1 - c0))


def tile_bounds(transform: tuple[float, ...], rc: np.ndarray, tile: int) -> np.ndarray:
    """(n, 4) left, bottom, right, top of each tile window (``transform * window``)."""
    a, b, c, d, e, f = transform[:6]
    rows = rc[:, 0].astype(np.float64)
    cols = rc[:, 1].astype(np.float64)
    xs, ys = [], []
    for dr, dc in ((0, 0), (0, tile), (tile, tile), (tile, 0)):
        xs.append(c + a * (cols + dc) + b * (rows + dr))
        ys.append(f + d * (cols + dc) + e * (rows + dr))
    x, y = np.stack(xs), np.stack(ys)
    return np.stack([x.min(0), y.min(0), x.max(0), y.max(0)], axis=1)


def _lay_grid(scene: _Scene, root: Path, tile: int, stride: int) -> None:
    """The kept grid cells of ``scene`` and their georeference (the slow part, cached)."""
    n_cells = max(0, (scene.height - tile) // stride + 1) * max(
        0, (scene.width - tile) // stride + 1
    )
    if n_cells > MAX_GRID:
        raise LayoutError(
            f"{root / scene.name}: {scene.width}x{scene.height} pixels cut by {tile} px every "
            f"{stride} px gives {n_cells:,} tiles, more than {MAX_GRID:,} per scene; use a "
            "larger stride"
        )
    rc = grid(scene.height, scene.width, tile, stride)
    scene.n_grid = len(rc)
    if len(rc):
        rc = rc[invalid_fraction(scene, root, rc, tile) <= INVALID_MAX]
    bounds = tile_bounds(scene.transform, rc, tile)
    scene.rc = rc
    scene.geo = (
        np.hstack([bounds, lonlat_rows(scene.crs, bounds)]) if len(rc) else np.zeros((0, 16))
    )


# ---------------------------------------------------------------------------- reading
class SceneReader:
    """Pixels of scene tiles by window. Datasets stay open (one set per thread: GDAL handles
    are not shared across threads), so their block caches serve neighbouring tiles."""

    def __init__(
        self,
        root: Path,
        scenes: list[_Scene],
        band_names: tuple[str, ...],
        tile: int,
        rec_scene: np.ndarray,
        rec_rc: np.ndarray,
    ) -> None:
        self.root = root
        self.scenes = scenes
        self.band_names = band_names
        self.tile = tile
        self.rec_scene = rec_scene
        self.rec_rc = rec_rc
        self.dtype = np.dtype(scenes[0].dtype) if scenes else np.dtype("uint16")
        self._local = threading.local()
        # per scene, the band object for each archive band position
        self._bands = [[s.band(n) for n in band_names] for s in scenes]

    def _dataset(self, rel: str):
        import rasterio

        handles = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        ds = handles.get(rel)
        if ds is None:
            path = self.root / rel
            try:
                with rasterio.Env(**th.GDAL_ENV):
                    ds = handles[rel] = rasterio.open(path)
            except Exception as e:  # rasterio/GDAL raise many types for broken files
                if not path.exists():
                    raise TileReadError(path, "file not found (moved or deleted?)") from None
                raise TileReadError(path, f"cannot read pixels ({th.first_line(e)})") from e
        return ds

    def close(self) -> None:
        """Close this thread's open datasets."""
        for ds in getattr(self._local, "handles", {}).values():
            ds.close()
        self._local.handles = {}

    def window(self, s: int, band: _Band, row: int, col: int, h: int, w: int) -> np.ndarray:
        """(h, w) values of ``band`` of scene ``s`` over grid window (row, col, h, w): a plain
        read at the grid's resolution, a cubic-spline resampled one for a coarser band."""
        from rasterio.enums import Resampling
        from rasterio.windows import Window

        scene = self.scenes[s]
        a, _, c, _, e, f = scene.transform[:6]
        ba, _, bc, _, be, bf = band.transform[:6]
        sx, sy = a / ba, e / be
        x0 = (c + a * col - bc) / ba
        y0 = (f + e * row - bf) / be
        ds = self._dataset(band.rel)
        try:
            if sx == 1 and sy == 1 and x0 == int(x0) and y0 == int(y0):
                win = Window(int(x0), int(y0), w, h)
                return ds.read(band.index, window=win, boundless=_outside(band, win))
            win = Window(x0, y0, w * sx, h * sy)
            return ds.read(
                band.index, window=win, out_shape=(h, w), resampling=Resampling.cubic_spline,
                boundless=_outside(band, win),
            )  # fmt: skip
        except Exception as err:  # rasterio/GDAL raise many types for broken files
            path = self.root / band.rel
            raise TileReadError(path, f"cannot read pixels ({th.first_line(err)})") from err

    def read_many(self, indices: list[int], band_indexes: list[int]) -> np.ndarray:
        """(N, len(band_indexes), T, T) file values of records ``indices``: tiles that are
        neighbours in a grid row are read as one strip per band and sliced."""
        t = self.tile
        out = np.empty((len(indices), len(band_indexes), t, t), dtype=self.dtype)
        groups: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        for j, i in enumerate(indices):
            r, c = self.rec_rc[i]
            groups[(int(self.rec_scene[i]), int(r))].append((int(c), j))
        for (s, r), items in groups.items():
            items.sort()
            run: list[tuple[int, int]] = []
            for item in items:
                if run and item[0] - run[-1][0] > t:
                    self._read_run(s, r, run, band_indexes, out)
                    run = []
                run.append(item)
            self._read_run(s, r, run, band_indexes, out)
        return out

    def _read_run(self, s, r, run, band_indexes, out) -> None:
        t = self.tile
        c0, c1 = run[0][0], run[-1][0] + t
        for k, bi in enumerate(band_indexes):
            strip = self.window(s, self._bands[s][bi - 1], r, c0, t, c1 - c0)
            for c, j in run:
                out[j, k] = strip[:, c - c0 : c - c0 + t]

    def read(self, index: int, band_indexes: list[int]) -> np.ndarray:
        return self.read_many([index], band_indexes)[0]

    def path_of(self, index: int) -> Path:
        return self.root / self.scenes[int(self.rec_scene[index])].main

    def stats(self) -> np.ndarray:
        per_scene = np.array([[*s.size_mtime(), 0] for s in self.scenes], dtype=np.int64)
        return per_scene.reshape(-1, 3)[self.rec_scene]

    def overviews(self, max_side: int = 1024) -> list[tuple[np.ndarray, tuple]]:
        """Per scene: (H, W, 3) uint8 true colour (B04 B03 B02) read decimated, stretched
        between the 2nd and 98th percentile of its valid pixels, and its corners in lon/lat
        (upper-left, upper-right, lower-right, lower-left): what a map draws under the tiles."""
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.warp import transform

        out = []
        for s in self.scenes:
            names = [n for n in ("B04", "B03", "B02") if any(b.name == n for b in s.bands)]
            bands = [s.band(n) for n in names] or [s.bands[0]]
            while len(bands) < 3:
                bands.append(bands[-1])
            scale = min(1.0, max_side / max(s.width, s.height))
            oh, ow = max(1, round(s.height * scale)), max(1, round(s.width * scale))
            with rasterio.Env(**th.GDAL_ENV):
                planes = [self._dataset(b.rel).read(b.index, out_shape=(oh, ow),
                                                    resampling=Resampling.average)
                          for b in bands]  # fmt: skip
            rgb = np.stack(planes, axis=-1).astype(np.float32)
            valid = np.all(rgb != (s.nodata if s.nodata is not None else np.nan), axis=-1)
            valid &= np.isfinite(rgb).all(axis=-1)
            if valid.any():
                lo, hi = np.percentile(rgb[valid], [2, 98])
                hi = hi if hi > lo else lo + 1
                img = np.clip((rgb - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
            else:
                img = np.zeros((oh, ow, 3), np.uint8)
            img[~valid] = 0
            a, b, c, d, e, f = s.transform[:6]
            xs = [c + a * x + b * y for x, y in ((0, 0), (s.width, 0), (s.width, s.height),
                                                   (0, s.height))]  # fmt: skip
            ys = [f + d * x + e * y for x, y in ((0, 0), (s.width, 0), (s.width, s.height),
                                                   (0, s.height))]  # fmt: skip
            corners: tuple = ()
            if s.crs:
                try:
                    lon, lat = transform(s.crs, "EPSG:4326", xs, ys)
                    corners = tuple(zip(lon, lat, strict=True))
                except Exception:  # an unknown CRS: the overview stays unplaced
                    corners = ()
            out.append((img, corners))
        return out


def _outside(band: _Band, win) -> bool:
    """Whether a window reaches past the band's raster (a coarse band whose extent ends a
    fraction of a pixel before the grid's): read boundless then, filled with nodata."""
    return (
        win.col_off < 0
        or win.row_off < 0
        or win.col_off + win.width > band.width + 1e-6
        or win.row_off + win.height > band.height + 1e-6
    )


# ---------------------------------------------------------------------------- opening
def _cache_name(tile: int, stride: int) -> str:
    return f"scenes-t{tile}-s{stride}"


def open_scenes(
    root: Path,
    specs: list[SceneSpec],
    tile_size: int = DEFAULT_TILE,
    stride: int | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> OpenedSource:
    """An :class:`OpenedSource` over the grid tiles of ``specs`` (see the module docstring).
    Raises :class:`~rsgui.layouts.LayoutError` naming the scene for a band file that cannot be
    read or scenes whose bands differ."""
    tile = int(tile_size)
    stride = tile if stride is None else int(stride)
    if tile < 1 or stride < 1:
        raise ValueError(f"tile size and stride must be positive, got {tile} and {stride}")
    name = _cache_name(tile, stride)
    meta, arrays = mf.load_side_cache(root, name, CACHE_VERSION) if use_cache else ({}, {})
    cached = {e["name"]: (i, e) for i, e in enumerate(meta.get("scenes", []))}
    scenes: list[_Scene] = []
    fresh = 0
    for k, spec in enumerate(specs):
        hit = cached.get(spec.name)
        stats = [list(s) for s in spec.stats]
        if hit is not None and hit[1].get("stats") == stats and f"{hit[0]}_rc" in arrays:
            try:
                s = _Scene.from_header(hit[1])
                s.rc = arrays[f"{hit[0]}_rc"].astype(np.int64).reshape(-1, 2)
                s.geo = arrays[f"{hit[0]}_geo"].astype(np.float64).reshape(-1, 16)
                scenes.append(s)
                if progress:
                    progress(k + 1, len(specs))
                continue
            except (KeyError, TypeError, ValueError, IndexError):
                pass
        s = _scene_header(root, spec)
        _lay_grid(s, root, tile, stride)
        scenes.append(s)
        fresh += 1
        if progress:
            progress(k + 1, len(specs))
    band_names = _same_bands(root, scenes)
    cache_path = None
    if use_cache:
        if fresh or len(cached) != len(scenes):
            out_arrays = {}
            for i, s in enumerate(scenes):
                out_arrays[f"{i}_rc"] = s.rc
                out_arrays[f"{i}_geo"] = s.geo
            meta = {"tile": tile, "stride": stride, "scenes": [s.header() for s in scenes]}
            cache_path = mf.save_side_cache(root, name, CACHE_VERSION, meta, out_arrays)
        else:
            cache_path = next((p for p in mf.side_cache_paths(root, name) if p.exists()), None)
    records, problems, rec_scene, rec_rc = _records(scenes, tile, len(band_names))
    reader = SceneReader(root, scenes, band_names, tile, rec_scene, rec_rc)
    first = scenes[0] if scenes else None
    return OpenedSource(
        preset=PRESET,
        band_names=band_names,
        tile_shape=(tile, tile),
        normalisation=NORMALISATION,
        records=records,
        problems=problems,
        reader=reader,
        band_source=first.band_source if first else "",
        cache_path=cache_path,
        cache_hit=bool(scenes) and fresh == 0,
        kind={
            "dtype": first.dtype if first else "uint16",
            "nodata": first.nodata if first else None,
        },  # fmt: skip
    )


def _same_bands(root: Path, scenes: list[_Scene]) -> tuple[str, ...]:
    """The archive's band names: those of the first scene, which every other must have too."""
    if not scenes:
        return ()
    names = tuple(b.name for b in scenes[0].bands)
    for s in scenes[1:]:
        other = tuple(b.name for b in s.bands)
        if set(other) != set(names) or s.dtype != scenes[0].dtype:
            raise LayoutError(
                f"{root}: scenes of different band layouts: {scenes[0].name} has "
                f"{len(names)} {scenes[0].dtype} bands ({' '.join(names)}), {s.name} has "
                f"{len(other)} {s.dtype} bands ({' '.join(other)}); the scenes of one archive "
                "must have the same bands: open them as separate archives"
            )
    return names


def _records(scenes: list[_Scene], tile: int, count: int):
    records: list[TileRecord] = []
    problems: list[Problem] = []
    rec_scene: list[np.ndarray] = []
    for k, s in enumerate(scenes):
        rc, geo = s.rc, s.geo
        assert rc is not None and geo is not None
        left = s.n_grid - len(rc)
        if s.n_grid == 0:
            problems.append(Problem(s.name, f"a scene of {s.width}x{s.height} pixels is "
                                    f"smaller than one tile ({tile}x{tile}); no tiles"))  # fmt: skip
        elif left:
            problems.append(Problem(s.name, f"{left:,} of {s.n_grid:,} tiles mostly nodata "
                                    "(outside the swath), left out"))  # fmt: skip
        base = len(records)
        for j, ((r, c), row) in enumerate(zip(rc.tolist(), geo.tolist(), strict=True)):
            records.append(TileRecord(base + j, f"{s.name}#r{r:06d}c{c:06d}", None, tile, tile,
                                      count, georef_from_row(s.crs, row)))  # fmt: skip
        rec_scene.append(np.full(len(rc), k, dtype=np.int64))
    rs = np.concatenate(rec_scene) if rec_scene else np.zeros(0, np.int64)
    rr = np.concatenate([s.rc for s in scenes]) if scenes else np.zeros((0, 2), np.int64)
    return records, problems, rs, rr
