"""An archive: a folder of image tiles with named bands, optional class labels and georeference.

Opening lists the files (:mod:`rsgui.listing`) and reads only their headers
(:mod:`rsgui.tiff_header`, cached in a manifest, :mod:`rsgui.manifest`, so the second open of
27,000 tiles takes under a second); pixels are read later, in batches, and only the bands asked
for. Files that cannot serve as tiles are skipped and listed in ``problems`` with the reason.

Decisions are taken per header "kind" (shape, dtype, band descriptions, CRS...), of which an
archive has a handful, not per file: the archive's shape is the most common (count, h, w), its
band order the most common one, and a file whose descriptions name the same bands in another
order is read by name. Plain uncompressed GeoTIFFs (EuroSAT's) are read with one seek and one
read; everything else goes through rasterio. ``RSGUI_FAST_TIFF=0`` sends everything to rasterio.

Invalid pixels: NaN, infinity and the file's nodata value. The header scan also screens each
GeoTIFF's pixels once (cached with the header): a tile with more than half of its pixels invalid
in any band, or with every value 0, is left out and listed in ``problems``. In the tiles kept,
reading masks invalid pixels: :class:`~rsgui.tiles.TileBatch` ``valid`` marks them, and they are
filled with the tile's band means over its valid pixels, so every pixel handed on is finite.
Histograms and band statistics skip them; a CNN sees the filled values. Integer tiles without a
nodata value (EuroSAT's) are never checked, so masking costs them nothing.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsgui import layouts
from rsgui import manifest as mf
from rsgui import tiff_header as th
from rsgui.bands import (
    BAND_SETS,
    PRESETS,
    ArchivePreset,
    Normalisation,
    band_indices,
    file_band_names,
    parse_band_order,
    resolve_band_set,
)
from rsgui.errors import MissingBandsError, TileReadError
from rsgui.geo import georef_from_entry, georef_from_row, lonlat_many
from rsgui.listing import FileStat, list_files
from rsgui.prefetch import prefetched
from rsgui.sources import OpenedSource, SourceReader
from rsgui.tiles import Problem, TileBatch, TileRecord

Progress = Callable[[int, int], None]
BandSpec = str | tuple[str, ...] | list[str]
Shape = tuple[int, int, int]  # bands, height, width

TIF_EXTENSIONS = (".tif", ".tiff")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _requested(bands: BandSpec) -> tuple[str, ...]:
    """The band names a spec asks for ('all' asks for none in particular)."""
    if isinstance(bands, str):
        if "," in bands:
            return tuple(b.strip() for b in bands.split(",") if b.strip())
        return BAND_SETS.get(bands) or ()
    return tuple(bands)


def _norm_bands(bands: BandSpec, available: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(bands, str) and "," in bands:
        bands = [b.strip() for b in bands.split(",") if b.strip()]
    return resolve_band_set(bands, available)


def _read_pixels(path: str, indexes: list[int], shape: Shape | None) -> np.ndarray:
    """Read 1-based ``indexes`` of one file; TileReadError on any failure or a changed shape."""
    import rasterio

    th.quiet_georeference_warnings()  # no georeference is a fact of the report, not a warning
    try:
        with rasterio.open(path) as src:
            if shape is not None and (src.count, src.height, src.width) != shape:
                raise TileReadError(
                    path,
                    f"changed since the archive was opened: now {src.count} bands of "
                    f"{src.width}x{src.height} pixels, expected {shape[0]} of "
                    f"{shape[2]}x{shape[1]}",
                )
            return src.read(indexes)
    except TileReadError:
        raise
    except FileNotFoundError:
        raise TileReadError(path, "file not found (moved or deleted?)") from None
    except Exception as e:
        if not os.path.exists(path):
            raise TileReadError(path, "file not found (moved or deleted?)") from None
        raise TileReadError(path, f"cannot read pixels ({th.first_line(e)})") from e


def _normalise(raw: np.ndarray, norm: Normalisation, out: np.ndarray) -> None:
    """``out = min(raw, clip) / divisor`` in float32 (converting first is twice as fast)."""
    np.copyto(out, raw, casting="unsafe")
    np.minimum(out, np.float32(norm.clip), out=out)
    np.divide(out, np.float32(norm.divisor), out=out)


def _may_be_invalid(kind: dict) -> tuple[bool, float | None]:
    """(whether tiles of this header kind can hold invalid pixels, their nodata value): float
    tiles can hold NaN and infinity, any tile its file's nodata value. Integer tiles without a
    nodata value (EuroSAT's) are never checked, so masking costs them nothing."""
    nodata = kind.get("nodata")
    return str(kind.get("dtype", "")).startswith(("float", "complex")) or nodata is not None, nodata


def fill_invalid(tile: np.ndarray, bad: np.ndarray) -> None:
    """Replace the ``bad`` (H, W) pixels of a normalised (C, H, W) tile, in place, by the tile's
    band means over its valid pixels (0 where no pixel is valid). How a masked pixel enters a
    CNN: as the tile's own average colour, which neither adds an edge nor a new value."""
    good = ~bad
    means = tile[:, good].mean(axis=1) if good.any() else np.zeros(len(tile), np.float32)
    tile[:, bad] = means[:, None]


# ---------------------------------------------------------------------------- scanning headers
class _KindTable:
    """Distinct header kinds, each stored once: 27,000 tiles share a handful."""

    def __init__(self) -> None:
        self.kinds: list[dict] = []
        self._index: dict[str, int] = {}

    def id_of(self, kind: dict) -> int:
        key = json.dumps(kind, sort_keys=True)
        if key not in self._index:
            self._index[key] = len(self.kinds)
            self.kinds.append(kind)
        return self._index[key]


def _cache_hits(cache: mf.Manifest, paths: list[str], sizes: np.ndarray, mtimes: np.ndarray):
    """(position in ``cache`` per path, whether that cached header still holds)."""
    lookup = cache.lookup()
    pos = np.array([lookup.get(p, -1) for p in paths], dtype=np.int64)
    hit = pos >= 0
    hit[hit] = (cache.sizes[pos[hit]] == sizes[hit]) & (cache.mtimes[pos[hit]] == mtimes[hit])
    retry = [i for i, k in enumerate(cache.kinds) if k.get("retry")]
    if retry:  # access problems may be fixed without touching the file's mtime (chmod)
        hit[hit] = ~np.isin(cache.kind_ids[pos[hit]], retry)
    return pos, hit


def _with_lonlat(heads: list[dict]) -> None:
    """Add the lon/lat footprint to every georeferenced header (one PROJ call per CRS)."""
    need = [h for h in heads if h.get("crs") and h.get("bounds")]
    lls = lonlat_many([(h["crs"], tuple(h["bounds"])) for h in need])
    for h, ll in zip(need, lls, strict=True):
        h["lonlat"] = ll


def _scan(
    root: Path,
    wanted: list[FileStat],
    use_cache: bool,
    progress: Progress | None,
    workers: int | None,
) -> tuple[mf.Manifest, int, Path | None]:
    """Headers of ``wanted`` as a :class:`Manifest`: cached ones reused when (size, mtime_ns)
    match, the rest read now (and the cache rewritten). Returns (manifest, headers read, path
    of the cache in use or None)."""
    n = len(wanted)
    paths = [f[0] for f in wanted]
    sizes = np.array([f[1] for f in wanted], dtype=np.int64)
    mtimes = np.array([f[2] for f in wanted], dtype=np.int64)
    kind_ids = np.full(n, -1, dtype=np.int64)
    geo = np.full((n, mf.GEO_COLS), np.nan)
    checks = np.zeros(n, dtype=np.int64)
    table = _KindTable()
    filled = np.zeros(n, dtype=bool)
    in_use: Path | None = None  # a cache that matches the folder exactly needs no rewrite
    for cache_path, cache in mf.load_manifests(root) if use_cache else []:
        pos, hit = _cache_hits(cache, paths, sizes, mtimes)
        if in_use is None and hit.all() and len(cache.paths) == n:
            in_use = cache_path
        take = hit & ~filled
        if take.any():
            remap = np.array([table.id_of(k) for k in cache.kinds], dtype=np.int64)
            kind_ids[take] = remap[cache.kind_ids[pos[take]]]
            geo[take] = cache.geo[pos[take]]
            checks[take] = cache.checks[pos[take]]
            filled |= take
        if filled.all():
            break
    left = np.flatnonzero(~filled)
    if len(left):
        todo = [paths[j] for j in left]
        heads = th.read_headers(root, todo, progress, workers, done_before=n - len(todo), total=n)
        _with_lonlat(heads)
        for j, h in zip(left, heads, strict=True):
            checks[j] = h.pop("check", 0)
            kind, row = mf.split_entry(h)
            kind_ids[j] = table.id_of(kind)
            geo[j] = row
    elif progress:
        progress(n, n)
    m = mf.Manifest(paths, sizes, mtimes, kind_ids, table.kinds, geo, checks)
    if use_cache and in_use is None:
        in_use = mf.save_manifest(root, m)
    return m, len(left), in_use


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------------------- deciding per kind
def _archive_root(root: str | os.PathLike) -> Path:
    p = Path(root).expanduser().resolve()
    if not p.exists():
        raise FileNotFoundError(f"{p}: archive folder not found")
    if not p.is_dir():
        raise NotADirectoryError(f"{p}: an archive is a folder of tiles, not a file")
    return p


def _pick_files(
    listing: list[FileStat], preset: str | None
) -> tuple[tuple[str, ...], list[FileStat], list[Problem]]:
    """(extension family, files of that family, problems for the others). Without a preset
    the family is whichever of GeoTIFF or JPEG/PNG has more files."""
    if preset is None:
        n_tif = sum(1 for f in listing if f[0].lower().endswith(TIF_EXTENSIONS))
        family = IMAGE_EXTENSIONS if len(listing) - n_tif > n_tif else TIF_EXTENSIONS
    else:
        family = tuple(e.lower() for e in PRESETS[preset].extensions)
    wanted: list[FileStat] = []
    problems: list[Problem] = []
    for f in listing:
        if f[0].lower().endswith(family):
            wanted.append(f)
        else:
            ext = os.path.splitext(f[0])[1]
            problems.append(
                Problem(f[0], f"a {ext} file in an archive of {'/'.join(family)} tiles")
            )
    return family, wanted, problems


@dataclass
class _Kinds:
    """The header kinds of a scan with how many files have each, in order of first file."""

    kinds: list[dict]
    counts: np.ndarray
    order: list[int]

    @classmethod
    def of(cls, m: mf.Manifest) -> _Kinds:
        counts = np.bincount(m.kind_ids, minlength=len(m.kinds))
        first = np.full(len(m.kinds), len(m.paths))
        np.minimum.at(first, m.kind_ids, np.arange(len(m.paths)))
        order = [int(k) for k in np.argsort(first, kind="stable") if counts[k]]
        return cls(m.kinds, counts, order)

    def readable(self) -> list[int]:
        return [k for k in self.order if "problem" not in self.kinds[k]]

    def shape_of(self, k: int) -> Shape:
        e = self.kinds[k]
        return e["count"], e["height"], e["width"]


def _archive_shape(kinds: _Kinds) -> tuple[Shape, int]:
    """(most common (count, h, w) among readable files, number of readable files)."""
    shapes: Counter = Counter()
    for k in kinds.readable():
        shapes[kinds.shape_of(k)] += kinds.counts[k]
    shape = shapes.most_common(1)[0][0] if shapes else (0, 0, 0)
    return shape, int(sum(shapes.values()))


def _detect_preset(family: tuple[str, ...], shape: Shape, n_readable: int, kinds: _Kinds) -> str:
    """JPEG/PNG tiles are EuroSAT RGB; 13-band GeoTIFFs mostly without band descriptions are
    EuroSAT MS; any other GeoTIFF archive is plain ``geotiff``."""
    if family == IMAGE_EXTENSIONS:
        return "eurosat-rgb"
    no_desc = sum(kinds.counts[k] for k in kinds.order if not kinds.kinds[k].get("descriptions"))
    return "eurosat-ms" if shape[0] == 13 and 2 * no_desc > n_readable else "geotiff"


@dataclass
class _Naming:
    """Per kind: why its files are skipped, or its band names and where they came from."""

    reason: dict[int, str]
    names: dict[int, tuple[str, ...]]
    sources: dict[int, str]


def _name_bands(
    kinds: _Kinds, shape: Shape, order: tuple[str, ...] | None, preset: ArchivePreset
) -> _Naming:
    """Skip kinds of another shape or whose band names cannot be told; name the others."""
    out = _Naming({}, {}, {})
    for k in kinds.order:
        e = kinds.kinds[k]
        if "problem" in e:
            out.reason[k] = e["problem"]
            continue
        c, h, w = kinds.shape_of(k)
        if (h, w) != shape[1:]:
            out.reason[k] = f"is {w}x{h} pixels, the archive's tiles are {shape[2]}x{shape[1]}"
        elif c != shape[0]:
            out.reason[k] = f"has {c} bands, the archive's tiles have {shape[0]}"
        else:
            names, source = file_band_names(e.get("descriptions"), c, order, preset.band_names)
            if names is None:
                given = order if source == "setting" else preset.band_names
                who = "the band order setting" if source == "setting" else f"preset {preset.name}"
                out.reason[k] = f"has {c} bands but {who} names {len(given)}"
            else:
                out.names[k], out.sources[k] = names, source
    return out


def _band_order(
    naming: _Naming, counts: np.ndarray, preset: ArchivePreset
) -> tuple[tuple[str, ...], str]:
    """(the archive's band order, where it came from): the order most files have. Kinds that
    name other bands are skipped (added to ``naming.reason``); other orders are read by name."""
    votes: Counter = Counter()
    for k, names in naming.names.items():
        votes[names] += counts[k]
    band_order = votes.most_common(1)[0][0] if votes else tuple(preset.band_names)
    for k, names in naming.names.items():
        if set(names) != set(band_order):
            naming.reason[k] = (
                f"bands {', '.join(names)} differ from the archive's {', '.join(band_order)}"
            )
    src_votes = Counter(naming.sources[k] for k, v in naming.names.items() if v == band_order)
    band_source = src_votes.most_common(1)[0][0] if src_votes else ""
    return tuple(band_order), band_source


def _kept_and_skipped(m: mf.Manifest, reason: dict[int, str]) -> tuple[list[int], list[Problem]]:
    """(positions of the files that become tiles, a problem for each of the others)."""
    kind_ids = m.kind_ids.tolist()
    kept = [j for j, k in enumerate(kind_ids) if k not in reason]
    skipped = [Problem(m.paths[j], reason[k]) for j, k in enumerate(kind_ids) if k in reason]
    return kept, skipped


def _labelled(paths: list[str], kept: list[int], by_first_folder: bool) -> bool:
    """EuroSAT layout: every tile sits in a class folder, most of them directly. A tile nested
    deeper keeps the class of its first folder (one stray subfolder does not unlabel the whole
    archive). A preset chosen by the user that says "labelled" labels by the first folder
    however deep the file is."""
    if not kept:
        return False
    if by_first_folder:
        return True
    depths = [paths[j].count("/") for j in kept]
    return min(depths) >= 1 and 2 * depths.count(1) > len(depths)


def _records(m: mf.Manifest, kept: list[int], shape: Shape, labelled: bool) -> list[TileRecord]:
    c, h, w = shape
    geo = m.geo[kept].tolist()
    kind_ids = m.kind_ids.tolist()
    records: list[TileRecord] = []
    for i, j in enumerate(kept):
        rel = m.paths[j]
        label = rel.split("/", 1)[0] if labelled and "/" in rel else None
        crs = m.kinds[kind_ids[j]].get("crs")
        records.append(TileRecord(i, rel, label, h, w, c, georef_from_row(crs, geo[i])))
    return records


def _default_normalisation(preset: ArchivePreset, kinds: _Kinds, naming: _Naming) -> Normalisation:
    """The preset's scaling, except 8-bit for a plain GeoTIFF archive of mostly uint8 tiles."""
    if preset.name != "geotiff":
        return preset.normalisation
    dtypes: Counter = Counter()
    for k in naming.names:
        if k not in naming.reason:
            dtypes[kinds.kinds[k]["dtype"]] += kinds.counts[k]
    if dtypes and dtypes.most_common(1)[0][0] == "uint8":
        return Normalisation(255.0, 255.0)
    return preset.normalisation


SOURCE_PRESETS = ("s2-scene", "bigearthnet")  # presets of archives opened through a source


def _with_problems(src: OpenedSource, extra: list[tuple[str, str]]) -> OpenedSource:
    """``src`` with the listing's and layout's problems added to its own, sorted by path."""
    if extra:
        src.problems = sorted(src.problems + [Problem(r, why) for r, why in extra],
                              key=lambda p: p.path)  # fmt: skip
    return src


class _JoinedReader:
    """Scene tiles first, then the tile files of an archive beside them, as one source."""

    def __init__(self, first: SourceReader, n_first: int, tiles: Archive, names: tuple[str, ...]):
        self.first = first
        self.n_first = n_first
        self.tiles = tiles
        self.names = names

    def _tile(self, i: int, band_indexes: list[int]) -> np.ndarray:
        j = i - self.n_first
        wanted = tuple(self.names[k - 1] for k in band_indexes)
        return self.tiles._read_file(j, self.tiles._indexes_for(j, wanted))

    def read(self, index: int, band_indexes: list[int]) -> np.ndarray:
        if index < self.n_first:
            return self.first.read(index, band_indexes)
        return self._tile(index, band_indexes)

    def read_many(self, indices: list[int], band_indexes: list[int]) -> np.ndarray:
        ours = [i for i in indices if i < self.n_first]
        many = getattr(self.first, "read_many", None)
        got = dict(zip(ours, many(ours, band_indexes), strict=True)) if many and ours else {}
        return np.stack([got[i] if i in got else self.read(i, band_indexes) for i in indices])

    def path_of(self, index: int) -> Path:
        if index < self.n_first:
            return self.first.path_of(index)
        return self.tiles.path_of(index - self.n_first)

    def stats(self) -> np.ndarray:
        return np.concatenate([np.asarray(self.first.stats()).reshape(-1, 3),
                               self.tiles.tile_stats()])  # fmt: skip

    def overviews(self, max_side: int = 1024) -> list:
        fn = getattr(self.first, "overviews", None)
        return fn(max_side) if fn else []


def _fits(src: OpenedSource, tiles: Archive) -> bool:
    """Whether tile files can join scene tiles: the same bands and tile size."""
    return set(tiles.band_names) == set(src.band_names) and tiles.tile_shape == src.tile_shape


def _scene_problems(src: OpenedSource, tiles: Archive) -> list[Problem]:
    """One line per scene that sits among tile files it does not match."""
    h, w = tiles.tile_shape
    out = []
    for s in getattr(src.reader, "scenes", []):
        out.append(Problem(s.main, (
            f"a scene, not a tile ({s.width}x{s.height} pixels, {len(src.band_names)} band(s)):"
            f" it does not match the {w}x{h} tiles of {len(tiles.band_names)} bands beside "
            "it; open it as an archive of its own"
        )))  # fmt: skip
    return out


def _joined(root: Path, src: OpenedSource, tiles: Archive) -> OpenedSource:
    """Scenes and the tile files beside them (same bands and size, :func:`_fits`) as one
    archive: scene tiles first."""
    if not tiles.records:
        src.problems = sorted(src.problems + tiles.problems, key=lambda p: p.path)
        return src
    n = len(src.records)
    import dataclasses

    records = src.records + [dataclasses.replace(r, index=n + r.index) for r in tiles.records]
    kinds = [dict(src.kind)] + [dict(k) for k in tiles._kinds]
    record_kind = np.concatenate([np.zeros(n, np.int64), tiles._record_kind + 1])
    reader = _JoinedReader(src.reader, n, tiles, src.band_names)
    return dataclasses.replace(
        src, records=records, problems=sorted(src.problems + tiles.problems, key=lambda p: p.path),
        reader=reader, kinds=kinds, record_kind=record_kind,
    )  # fmt: skip


class Archive:
    """A folder of tiles. ``records`` are the good tiles in sorted path order; ``problems``
    lists every skipped file with its reason."""

    root: Path
    preset: str
    band_names: tuple[str, ...]
    tile_shape: tuple[int, int]
    normalisation: Normalisation
    records: list[TileRecord]
    problems: list[Problem]
    classes: tuple[str, ...]
    labels: np.ndarray

    def __init__(
        self,
        root: Path,
        preset: str,
        band_names: tuple[str, ...],
        tile_shape: tuple[int, int],
        normalisation: Normalisation,
        records: list[TileRecord],
        problems: list[Problem],
        *,
        kinds: list[dict] | None = None,
        kind_names: list[tuple[str, ...] | None] | None = None,
        record_kind: np.ndarray | None = None,
        record_stat: np.ndarray | None = None,
        record_check: np.ndarray | None = None,
        band_source: str = "",
        cache_path: Path | None = None,
        cache_hit: bool = False,
        reader: SourceReader | None = None,
        label_names: tuple[str, ...] = (),
        label_sets: np.ndarray | None = None,
    ):
        self.root = root
        self.preset = preset
        self.band_names = band_names
        self.tile_shape = tile_shape
        self.normalisation = normalisation
        self.records = records
        self.problems = problems
        self.band_source = band_source  # where the band order came from: file|setting|preset|...
        self.cache_path = cache_path
        self.cache_hit = cache_hit  # True when no header had to be read
        n = len(records)
        # per record: its header kind (band order, plain-TIFF layout) and (size, mtime_ns) at scan
        self._kinds = kinds or [{}]
        self._kind_names = kind_names or [band_names]
        self._record_kind = record_kind if record_kind is not None else np.zeros(n, np.int64)
        self._record_stat = record_stat if record_stat is not None else np.full((n, 2), -1)
        self._record_check = record_check if record_check is not None else np.zeros(n, np.int64)
        self._no_raw = np.zeros(n, dtype=bool)  # records whose cached layout is known stale
        self._plain_ok = bool(th.FAST_TIFF)
        labelled = {r.label for r in records} - {None}
        self.classes = tuple(sorted(labelled))
        cls_index = {c: i for i, c in enumerate(self.classes)}
        cls_index[None] = -1
        self.labels = np.array([cls_index[r.label] for r in records], dtype=np.int64)
        self._by_path = {r.path: r.index for r in records}
        # a scene or per-band product reads through its source; a folder of tiles, itself
        self._reader = reader
        # multi-label ground truth (BigEarthNet): (N, L) bool over label_names, else None
        self.label_names = label_names
        self.label_sets = label_sets

    @classmethod
    def from_source(cls, root: Path, src: OpenedSource) -> Archive:
        """An archive whose tiles come from a scene or a per-band product (:mod:`rsgui.sources`)."""
        n = len(src.records)
        kinds = src.kinds if src.kinds is not None else [dict(src.kind)]
        record_kind = src.record_kind if src.record_kind is not None else np.zeros(n, np.int64)
        return cls(
            root,
            src.preset,
            src.band_names,
            src.tile_shape,
            src.normalisation,
            src.records,
            src.problems,
            kinds=kinds,
            kind_names=[src.band_names] * len(kinds),
            record_kind=np.asarray(record_kind, dtype=np.int64),
            record_stat=np.zeros((n, 2), np.int64),
            record_check=np.zeros(n, np.int64),
            band_source=src.band_source,
            cache_path=src.cache_path,
            cache_hit=src.cache_hit,
            reader=src.reader,
            label_names=src.label_names,
            label_sets=src.label_sets,
        )

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        root: str | os.PathLike,
        preset: str | None = None,
        band_names: Iterable[str] | str | None = None,
        normalisation: Normalisation | None = None,
        progress: Progress | None = None,
        use_cache: bool = True,
        workers: int | None = None,
        *,
        tile_size: int = 64,
        stride: int | None = None,
        layout: str | None = None,
    ) -> Archive:
        """Scan ``root`` (headers only; cached) and decide preset, band order, shape and labels.

        ``band_names``: the band order of files without band descriptions (overrides the
        preset's). ``progress(done, total)`` is called while headers are read. A folder of
        Sentinel-2 scenes (:mod:`rsgui.scenes`) is cut into a grid of ``tile_size`` pixels at
        10 m every ``stride`` pixels (default: ``tile_size``); BigEarthNet patch folders are
        read by :mod:`rsgui.patches`. ``layout`` ("tiles", "scenes", "patches") overrides what
        :func:`rsgui.layouts.detect` decides ("scenes" also cuts rasters of tile size)."""
        # tens of thousands of small objects: the cyclic GC would rescan them again and again
        with _gc_paused():
            root = _archive_root(root)
            if preset is not None and preset not in PRESETS and preset not in SOURCE_PRESETS:
                raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
            unlisted: list[tuple[str, str]] = []
            listing = list_files(root, layouts.LISTED_EXTENSIONS, unlisted)
            found = layouts.detect(root, listing, force=layout)
            if found.kind == layouts.PATCHES:
                from rsgui.patches import open_patches

                src = open_patches(root, use_cache=use_cache, progress=progress)
                return cls.from_source(root, _with_problems(src, unlisted + found.problems))
            if found.kind == layouts.SCENES:
                return cls._open_scenes(
                    root, found, unlisted, preset, band_names, normalisation, progress,
                    use_cache, workers, tile_size, stride,
                )  # fmt: skip
            if preset is not None and preset not in PRESETS:
                raise ValueError(f"{root}: preset {preset!r} is for scenes or patches, and "
                                 "this folder holds tile files")  # fmt: skip
            return cls._open(
                root, found.tile_files, unlisted + found.problems, preset, band_names,
                normalisation, progress, use_cache, workers,
            )  # fmt: skip

    @classmethod
    def _open_scenes(
        cls,
        root: Path,
        found: layouts.Layout,
        unlisted: list[tuple[str, str]],
        preset: str | None,
        band_names: Iterable[str] | str | None,
        normalisation: Normalisation | None,
        progress: Progress | None,
        use_cache: bool,
        workers: int | None,
        tile_size: int,
        stride: int | None,
    ) -> Archive:
        """Scenes, and the tile files beside them when they have the same bands and size."""
        from rsgui.scenes import open_scenes

        src = open_scenes(root, found.scenes, tile_size, stride, use_cache, progress)
        tile_files = [f for f in found.tile_files if not f[3]]
        if tile_files:
            tiles = cls._open(
                root, found.tile_files, unlisted + found.problems,
                preset if preset in PRESETS else None, band_names, normalisation, None,
                use_cache, workers,
            )  # fmt: skip
            if tiles.records and not _fits(src, tiles):
                # tiles are the archive; a scene of other bands or size among them is reported
                tiles.problems = sorted(tiles.problems + _scene_problems(src, tiles),
                                        key=lambda p: p.path)  # fmt: skip
                return tiles
            src = _joined(root, src, tiles)
        else:
            src = _with_problems(src, unlisted + found.problems)
        if normalisation is not None:
            src.normalisation = normalisation
        return cls.from_source(root, src)

    @classmethod
    def _open(
        cls,
        root: Path,
        listing: list[FileStat],
        unlisted: list[tuple[str, str]],
        preset: str | None,
        band_names: Iterable[str] | str | None,
        normalisation: Normalisation | None,
        progress: Progress | None,
        use_cache: bool,
        workers: int | None,
    ) -> Archive:
        order = parse_band_order(band_names)
        family, wanted, problems = _pick_files(listing, preset)
        problems += [Problem(rel, reason) for rel, reason in unlisted]
        m, n_read, cache_path = _scan(root, wanted, use_cache, progress, workers)
        kinds = _Kinds.of(m)
        shape, n_readable = _archive_shape(kinds)
        p = PRESETS[preset or _detect_preset(family, shape, n_readable, kinds)]
        if order and n_readable and len(order) != shape[0]:
            raise ValueError(
                f"the band order names {len(order)} bands but the tiles of {root} have {shape[0]}"
            )
        naming = _name_bands(kinds, shape, order, p)
        band_order, band_source = _band_order(naming, kinds.counts, p)

        kept, skipped = _kept_and_skipped(m, naming.reason)
        problems = sorted(problems + skipped, key=lambda pr: pr.path)
        labelled = _labelled(m.paths, kept, p.labelled and preset is not None)
        if normalisation is None:
            normalisation = _default_normalisation(p, kinds, naming) if kept else p.normalisation
        kept_arr = np.asarray(kept, dtype=np.int64)
        return cls(
            root,
            p.name,
            band_order,
            shape[1:],
            normalisation,
            _records(m, kept, shape, labelled),
            problems,
            kinds=m.kinds,
            kind_names=[naming.names.get(k) for k in range(len(m.kinds))],
            record_kind=m.kind_ids[kept_arr],
            record_stat=np.stack([m.sizes[kept_arr], m.mtimes[kept_arr]], axis=1),
            record_check=m.checks[kept_arr],
            band_source=band_source,
            cache_path=cache_path,
            cache_hit=n_read == 0,
        )

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.records)

    def tile_stats(self) -> np.ndarray:
        """(N, 3) int64 per record: size, mtime_ns and content check when it was scanned (what
        an index stores to tell later which tiles changed)."""
        if self._reader is not None:
            return np.asarray(self._reader.stats(), dtype=np.int64)
        return np.column_stack([self._record_stat, self._record_check]).astype(np.int64)

    def path_of(self, index: int) -> Path:
        """Absolute path of the file holding record ``index``."""
        if self._reader is not None:
            return self._reader.path_of(index)
        return self.root / self.records[index].path

    def _indexes_for(self, i: int, names: tuple[str, ...]) -> list[int]:
        order = self._kind_names[self._record_kind[i]] or self.band_names
        return [k + 1 for k in band_indices(order, names)]

    def _shape(self) -> Shape:
        return (len(self.band_names), *self.tile_shape)

    def _read_file(self, i: int, indexes: list[int]) -> np.ndarray:
        """File values of 1-based band ``indexes`` of record ``i``: one seek for a plain GeoTIFF
        that has not changed since it was scanned, else through rasterio with a shape check."""
        if self._reader is not None:
            return self._reader.read(i, indexes)
        path = str(self.path_of(i))
        kind = self._kinds[self._record_kind[i]]
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise TileReadError(path, "file not found (moved or deleted?)") from None
        except OSError as e:
            raise TileReadError(path, f"cannot be read: {e.strerror or e}") from None
        if not stat.S_ISREG(st.st_mode):
            raise TileReadError(path, "is no longer a regular file")
        if "raw" in kind and self._plain_ok and not self._no_raw[i]:
            size, mtime = self._record_stat[i]
            if st.st_size == size and st.st_mtime_ns == mtime:
                try:
                    return th.read_raw_pixels(path, kind, indexes, int(self._record_check[i]))
                except th.LayoutChanged:
                    pass  # same size and time, other content: read it afresh, shape checked
                except OSError as e:
                    raise TileReadError(path, f"cannot read pixels ({e})") from None
        return _read_pixels(path, indexes, self._shape())

    def read(self, indices: int | Iterable[int], bands: BandSpec = "all") -> TileBatch:
        """Normalised float32 pixels (N, C, H, W) of the given records, bands in the order asked."""
        import rasterio

        names = _norm_bands(bands, self.band_names)
        idx = [int(i) for i in np.atleast_1d(np.asarray(indices, dtype=np.int64))]
        h, w = self.tile_shape
        out = np.empty((len(idx), len(names), h, w), dtype=np.float32)
        per_kind: dict[int, list[int]] = {}  # band positions depend only on the header kind
        checked: dict[int, tuple[bool, float | None]] = {}  # (may hold invalid pixels, nodata)
        valid: np.ndarray | None = None
        for i in idx:
            if i < 0 or i >= len(self.records):
                raise IndexError(f"tile index {i} out of range (archive has {len(self)})")
        many = None
        read_many = getattr(self._reader, "read_many", None)
        with rasterio.Env(**th.GDAL_ENV):
            if read_many is not None and idx:  # a scene reads neighbours as one strip
                many = read_many(idx, self._indexes_for(idx[0], names))
            for j, i in enumerate(idx):
                k = int(self._record_kind[i])
                if k not in per_kind:
                    per_kind[k] = self._indexes_for(i, names)
                    checked[k] = _may_be_invalid(self._kinds[k])
                try:
                    raw = many[j] if many is not None else self._read_file(i, per_kind[k])
                except TileReadError:
                    self._forget(i)
                    raise
                _normalise(raw, self.normalisation, out[j])
                if checked[k][0]:
                    bad = th.invalid_mask(raw, checked[k][1])
                    if bad is not None:
                        if valid is None:
                            valid = np.ones((len(idx), h, w), dtype=bool)
                        valid[j] = ~bad
                        fill_invalid(out[j], bad)
        return TileBatch(out, names, [self.records[i] for i in idx], valid)

    def note_checks(self, checks: np.ndarray) -> list[int]:
        """Take fresh content checks (one per record, 0 unknown) for records whose scan was
        stale (same size and mtime, other content): they are read afresh from now on, and
        dropped from the header cache so the next scan reads them again. Returns their
        positions."""
        checks = np.asarray(checks, dtype=np.int64)
        stale = np.flatnonzero((checks != 0) & (checks != self._record_check))
        if stale.size:
            self._record_check[stale] = checks[stale]
            self._no_raw[stale] = True  # the cached offsets are of the old content
            if self.cache_path is not None:
                with contextlib.suppress(OSError, ValueError):
                    mf.drop_entries(self.root, [self.records[i].path for i in stale])
        return stale.tolist()

    def _forget(self, i: int) -> None:
        """Drop a tile that could not be read from the header cache, so the next scan reads its
        header again (and reports the file) instead of trusting it until it is touched."""
        if self.cache_path is not None:
            with contextlib.suppress(OSError, ValueError):
                mf.drop_entries(self.root, [self.records[i].path])

    def read_raw(self, index: int) -> np.ndarray:
        """(C, H, W) file values of every band, in ``band_names`` order (for statistics views)."""
        import rasterio

        with rasterio.Env(**th.GDAL_ENV):
            raw = self._read_file(index, self._indexes_for(index, self.band_names))
        return np.array(raw, order="C")  # own, writable copy

    def overviews(self, max_side: int = 1024) -> list[tuple[np.ndarray, tuple]]:
        """Per scene of a scene archive: ((H, W, 3) uint8 true colour read decimated, its
        corners in lon/lat: upper-left, upper-right, lower-right, lower-left), for a map to draw
        under the tile footprints; [] for other archives."""
        fn = getattr(self._reader, "overviews", None)
        if fn is None:
            return []
        import rasterio

        with rasterio.Env(**th.GDAL_ENV):
            return fn(max_side)

    def iter_batches(
        self,
        bands: BandSpec = "all",
        batch_size: int = 256,
        indices: Iterable[int] | None = None,
    ) -> Iterator[TileBatch]:
        """Batches of :meth:`read` over all records (or ``indices``), in order; the next batch
        is read while the caller works on this one (:mod:`rsgui.prefetch`)."""
        idx = np.arange(len(self)) if indices is None else np.asarray(list(indices), np.int64)
        _norm_bands(bands, self.band_names)  # fail before the first read
        chunks = [idx[start : start + batch_size] for start in range(0, len(idx), batch_size)]
        yield from prefetched(lambda chunk: self.read(chunk, bands), chunks)

    # ------------------------------------------------------------------ lookup & report
    def find(self, path: str | os.PathLike) -> int | None:
        """Record index of an absolute or archive-relative path, or None."""
        p = Path(path)
        if p.is_absolute():
            try:
                rel = p.resolve().relative_to(self.root).as_posix()
            except ValueError:
                try:
                    rel = p.relative_to(self.root).as_posix()
                except ValueError:
                    return None
        else:
            rel = p.as_posix()
        return self._by_path.get(rel)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(r.label for r in self.records if r.label is not None)
        return {c: counts[c] for c in self.classes}

    def crs_counts(self) -> dict[str, int]:
        return dict(Counter(r.georef.crs or "none" for r in self.records).most_common())

    def report(self) -> str:
        """A human-readable summary: tiles, bands, classes, CRSs, and every problem."""
        h, w = self.tile_shape
        lines = [
            f"Archive {self.root}",
            f"  preset: {self.preset}",
            f"  tiles: {len(self)} of {w}x{h} pixels",
            f"  bands ({len(self.band_names)}, order from {self.band_source or 'n/a'}): "
            + " ".join(self.band_names),
            f"  normalisation: min(value, {self.normalisation.clip:g}) / "
            f"{self.normalisation.divisor:g}",
        ]
        if self.classes:
            lines.append(f"  classes ({len(self.classes)}):")
            lines += [f"    {c}: {n}" for c, n in self.class_counts().items()]
        elif self.label_sets is not None:
            counts = np.asarray(self.label_sets).sum(axis=0)
            lines.append(f"  labels ({len(self.label_names)}, several per tile):")
            lines += [f"    {c}: {int(n)}" for c, n in zip(self.label_names, counts, strict=True)]
        else:
            lines.append("  classes: none (unlabelled)")
        crs = self.crs_counts()
        lines.append("  CRS: " + ", ".join(f"{k} ({v})" for k, v in crs.items()))
        if self.problems:
            lines.append(f"  problems ({len(self.problems)} files skipped):")
            lines += [f"    {p.path}: {p.reason}" for p in self.problems]
        else:
            lines.append("  problems: none")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"Archive({str(self.root)!r}, preset={self.preset!r}, tiles={len(self)}, "
            f"bands={len(self.band_names)}, problems={len(self.problems)})"
        )


def read_tile_file(
    path: str | os.PathLike,
    band_names: Iterable[str] | str | None = None,
    normalisation: Normalisation | None = None,
    bands: BandSpec = "all",
    expected_shape: tuple[int, ...] | None = None,
) -> TileBatch:
    """One tile from anywhere (a query). Band names follow the one rule of
    :func:`rsgui.bands.file_band_names`: the file's descriptions, else ``band_names``, else its
    band count (13 -> EuroSAT MS order, 3 -> RGB). Raises :class:`TileReadError` naming the file
    and what is wrong with it."""
    import rasterio

    p = Path(path).expanduser()
    pstr = str(p)
    order = parse_band_order(band_names)
    with rasterio.Env(**th.GDAL_ENV):
        e = th.read_header(p)
    if "problem" in e:
        raise TileReadError(pstr, e["problem"])
    c, h, w = e["count"], e["height"], e["width"]
    if expected_shape is not None:
        exp_hw = tuple(expected_shape[-2:])
        if (h, w) != exp_hw:
            raise TileReadError(
                pstr, f"is {w}x{h} pixels, the index expects tiles of {exp_hw[1]}x{exp_hw[0]}"
            )
    names, source = file_band_names(e.get("descriptions"), c, order)
    if names is None:
        raise TileReadError(pstr, f"has {c} bands, but the band order given names {len(order)}")
    try:
        wanted = _norm_bands(bands, names)
    except MissingBandsError as err:
        plain = "" if source != "default" or c in (3, 13) else " and no band names"
        missing = getattr(err, "missing", ())
        need = ", ".join(_requested(bands) or missing)
        raise TileReadError(
            pstr,
            f"has {c} bands{plain} ({', '.join(names)}); the index needs {need} "
            f"(missing {', '.join(missing)})",
        ) from None
    if normalisation is None:
        normalisation = Normalisation(255.0, 255.0) if e["dtype"] == "uint8" else Normalisation()
    indexes = [names.index(b) + 1 for b in wanted]
    if "raw" in e:
        try:
            raw = th.read_raw_pixels(pstr, e, indexes)
        except OSError as err:
            raise TileReadError(pstr, f"cannot read pixels ({err})") from None
    else:
        with rasterio.Env(**th.GDAL_ENV):
            raw = _read_pixels(pstr, indexes, (c, h, w))
    out = np.empty((1, len(wanted), h, w), dtype=np.float32)
    _normalise(raw, normalisation, out[0])
    valid = None
    maybe, nodata = _may_be_invalid(e)
    bad = th.invalid_mask(raw, nodata) if maybe else None
    if bad is not None:
        valid = ~bad[None]
        fill_invalid(out[0], bad)
    if e.get("crs"):
        e["lonlat"] = lonlat_many([(e["crs"], tuple(e["bounds"]))])[0]
    rec = TileRecord(0, p.resolve().as_posix(), None, h, w, c, georef_from_entry(e))
    return TileBatch(out, wanted, [rec], valid)
