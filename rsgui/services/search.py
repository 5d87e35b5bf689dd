"""Search an index with query tiles: one query-tile rule, one results record, one set of writers.

The query is read and encoded exactly as the index's tiles were (the index names its method, band
set and normalisation, and holds the spectral projection or the path of the trained model), or
refused with the reason. The application's query panel, ``rsgui-cli search`` and the exports all
go through :func:`search` and write with :func:`results_csv`, :func:`results_json` and
:func:`results_geojson`.

The query-tile rule: a query that is itself a tile of the indexed archive is left out of its own
results, exactly as the evaluation leaves every query out (leave-one-out): rank 1 is the nearest
*other* tile, so precision@k counts only real matches. A copy of a tile kept outside the archive
is not a member and is ranked like any other file (its twin then comes first, at distance 0).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rsgui.atomic import atomic_write_bytes
from rsgui.bands import Normalisation
from rsgui.encoders import encode_batch
from rsgui.errors import IndexMismatchError, JobError, MissingBandsError, TileReadError
from rsgui.index_store import HashIndex, describe_bands, index_paths
from rsgui.progress import Job, Progress
from rsgui.tiles import TileBatch

# The columns of every results table (CSV, JSON rows, GeoJSON properties).
RESULT_COLUMNS: tuple[str, ...] = (
    "query", "rank", "path", "distance", "label", "correct", "lon", "lat",
)  # fmt: skip


@dataclass(frozen=True)
class SearchResult:
    """One result: the ``rank``-th (from 1) nearest archive tile to ``query``.

    ``path`` is absolute when the index knows its archive's folder (as stored otherwise);
    ``distance`` is the Hamming distance (binary codes) or 1 - cosine similarity (float);
    ``correct``: same class as the query (None when either label is unknown); ``lon``/``lat``:
    the tile's centre, filled by :func:`locate`. ``archive_index`` (the tile's position in the
    open archive) and ``footprint`` are not columns."""

    query: str
    rank: int
    path: str
    distance: int | float
    label: str | None
    correct: bool | None = None
    lon: float | None = None
    lat: float | None = None
    archive_index: int | None = field(default=None, compare=False)
    footprint: tuple | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict:
        d = asdict(self)
        return {c: d[c] for c in RESULT_COLUMNS}


class QueryLike(Protocol):
    """A query tile: its file and, when it is a tile of the open archive, its position there."""

    path: Path
    archive_index: int | None


@dataclass(frozen=True)
class QueryTile:
    """A query given as a file (the command line); the application passes its own tile refs."""

    path: Path
    archive_index: int | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class SearchResults:
    """The results of one query against one index."""

    query: Any  # a QueryLike (QueryTile, or the application's TileRef)
    query_label: str | None
    index_path: Path | None
    method: str
    bits: int
    kind: str
    rows: list[SearchResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    encoder: Any = field(default=None, repr=False, compare=False)  # reused by the next search
    # a set query (:mod:`rsgui.services.feedback`): every positive (``query`` is the first) and
    # negative example, how they were combined or refined, and the filters applied
    examples: tuple = ()
    negatives: tuple = ()
    strategy: str = ""
    filters: str | None = None

    def precision_at(self, k: int) -> float | None:
        """Share of the first ``k`` results with the query's class; None without labels."""
        judged = [r.correct for r in self.rows[:k]]
        if not judged or any(c is None for c in judged):
            return None
        return sum(bool(c) for c in judged) / len(judged)


# -- the encoder of an index and its queries ------------------------------------------------------


def encoder_for_index(index: HashIndex):
    """The encoder that made ``index``: rebuilt from its arrays (spectral) or loaded from the
    model file it names (trained methods), checked against the index."""
    meta = index.meta
    if meta.method in ("spectral", "pretrained"):
        from rsgui.encoders.pretrained import PretrainedEncoder
        from rsgui.encoders.spectral import SpectralEncoder

        cls = SpectralEncoder if meta.method == "spectral" else PretrainedEncoder
        try:
            return cls.from_state(meta, index.extra_arrays)
        except (KeyError, ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError) as e:
            raise IndexMismatchError(
                f"cannot rebuild the {meta.method} encoder of the index: {e}"
            ) from None
    from rsgui.encoders import load_trained_encoder

    model_path = (meta.encoder or {}).get("model_path") or (meta.encoder or {}).get("model")
    if not model_path:
        raise IndexMismatchError(
            f"the index (method {meta.method!r}) does not name its model file; rebuild it"
        )
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"{model_path}: model file of the index not found")
    encoder = load_trained_encoder(model_path, meta.method)
    index.check_query(encoder.method, encoder.band_names)
    if int(encoder.bits) != meta.bits:
        raise IndexMismatchError(
            f"{model_path}: model gives {encoder.bits} bits, the index holds {meta.bits}"
        )
    return encoder


def read_query(index: HashIndex, path, tile_shape=None) -> TileBatch:
    """Read one query file as the index's tiles were read (band names, normalisation)."""
    from rsgui.archive import read_tile_file

    meta = index.meta
    norm = Normalisation.from_dict(meta.normalisation) if meta.normalisation else None
    if tile_shape is None and meta.encoder.get("tile_shape"):
        tile_shape = tuple(meta.encoder["tile_shape"])
    try:
        batch = read_tile_file(
            path, normalisation=norm, bands=list(meta.band_names), expected_shape=tile_shape
        )
    except TileReadError:
        raise
    except MissingBandsError as e:
        raise TileReadError(
            str(path), f"cannot be searched in an index of {describe_bands(meta.band_names)}: {e}"
        ) from None
    if tuple(batch.band_names) != tuple(meta.band_names):
        raise TileReadError(
            str(path),
            f"has bands {describe_bands(batch.band_names)}, the index needs "
            f"{describe_bands(meta.band_names)}",
        )
    return batch


def encode_query(index: HashIndex, query, encoder=None) -> np.ndarray:
    """(Q, bits) codes of a query: a file path or an already read :class:`TileBatch` whose bands
    are the index's."""
    encoder = encoder or encoder_for_index(index)
    if isinstance(query, TileBatch):
        if tuple(query.band_names) != tuple(index.meta.band_names):
            raise IndexMismatchError(
                f"query tiles have bands {describe_bands(query.band_names)}, the index needs "
                f"{describe_bands(index.meta.band_names)}"
            )
        batch = query
    else:
        batch = read_query(index, query, getattr(encoder, "tile_shape", None))
    return encode_batch(encoder, batch)


def own_position(index: HashIndex, path) -> int | None:
    """Position in the index of a query file that is one of its archive's tiles, else None
    (the query-tile rule leaves that position out of the query's results)."""
    root = index.meta.archive_root
    if not root:
        return None
    try:
        rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except (ValueError, OSError):
        return None
    return index.position_of(rel)


# -- search ---------------------------------------------------------------------------------------


def search(
    index: HashIndex,
    query,
    k: int,
    *,
    archive=None,
    encoder=None,
    index_path: str | Path | None = None,
    area: Sequence[float] | None = None,
) -> SearchResults:
    """The ``k`` archive tiles nearest to ``query`` (a file path or a tile ref with ``path`` and
    ``archive_index``), the query itself left out when it is an archive tile.

    With the open ``archive`` an archive tile is read from it (when its scaling and bands are the
    index's), results get their archive position and the query its class. ``area``: (west,
    south, east, north) in degrees: only tiles whose centre lies inside are ranked (the open
    ``archive`` places them; tiles without georeference are left out). Raises
    :class:`rsgui.errors.TileReadError` / :class:`rsgui.errors.IndexMismatchError` naming the
    file and the problem when the query does not fit the index."""
    if k < 1:
        raise ValueError(f"the number of results must be at least 1, got {k}")
    box = None if area is None else check_area(area)
    allowed = None if box is None else area_mask(index, box, archive)
    t0 = time.perf_counter()
    ref = query if hasattr(query, "archive_index") else QueryTile(Path(query))
    encoder = encoder or encoder_for_index(index)
    meta = index.meta
    source: Any = str(ref.path)
    if ref.archive_index is not None and _reads_alike(archive, meta):
        source = archive.read([ref.archive_index], bands=list(meta.band_names))
    codes = encode_query(index, source, encoder)
    own = own_position(index, ref.path)
    if allowed is None:
        idx, score = index.search(codes, k, exclude=None if own is None else [own])
    else:
        idx, score = search_allowed(index, codes, k, allowed, own)
    q_label = _query_label(archive, index, ref)
    same_archive = (
        archive is not None and meta.archive_root and Path(meta.archive_root) == Path(archive.root)
    )
    root = Path(meta.archive_root) if meta.archive_root else None
    rows: list[SearchResult] = []
    for rank, (i, s) in enumerate(zip(idx[0].tolist(), score[0].tolist(), strict=True), start=1):
        rel, label = index.paths[i], index.labels[i]
        dist = int(s) if meta.kind == "binary" else 1.0 - float(s)
        path = str(root / rel) if root is not None and not Path(rel).is_absolute() else rel
        correct = None if (q_label is None or label is None) else (label == q_label)
        aidx = archive.find(rel) if same_archive else None
        rows.append(
            SearchResult(str(ref.path), rank, path, dist, label, correct, archive_index=aidx)
        )
    return SearchResults(
        query=ref, query_label=q_label, index_path=None if index_path is None else Path(index_path),
        method=meta.method, bits=meta.bits, kind=meta.kind, rows=rows,
        elapsed_s=time.perf_counter() - t0, encoder=encoder,
        filters=None if box is None else describe_area(box, int(allowed.sum())),
    )  # fmt: skip


# -- the area filter ------------------------------------------------------------------------------


def check_area(area: Sequence[float]) -> tuple[float, float, float, float]:
    """(west, south, east, north) as floats within lon/lat limits, west <= east, south <= north;
    ValueError names what is wrong."""
    try:
        w, s, e, n = (float(v) for v in area)
    except (TypeError, ValueError):
        raise ValueError(f"an area is west,south,east,north in degrees, got {area!r}") from None
    if not np.isfinite([w, s, e, n]).all():
        raise ValueError("an area's corners must be finite numbers")
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ValueError(
            f"area {w:g},{s:g},{e:g},{n:g}: need -180 <= west <= east <= 180 and "
            "-90 <= south <= north <= 90"
        )
    return (w, s, e, n)


def describe_area(area: Sequence[float], n_tiles: int | None = None) -> str:
    """How results say that an area filtered them: ``area W,S,E,N (n tiles)``."""
    text = "area " + ",".join(f"{v:.4g}" for v in area)
    return text if n_tiles is None else f"{text} ({n_tiles:,} tiles)"


def centres_in_area(centres: np.ndarray, area: Sequence[float]) -> np.ndarray:
    """(n,) bool: the (n, 2) lon/lat ``centres`` inside ``area`` (edges included); a NaN centre
    (no georeference) is never inside."""
    w, s, e, n = area
    c = np.asarray(centres, float).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        return (c[:, 0] >= w) & (c[:, 0] <= e) & (c[:, 1] >= s) & (c[:, 1] <= n)


_centres_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def index_centres(index: HashIndex, archive) -> np.ndarray:
    """(N, 2) lon/lat centre of every index position, from the open archive's records (NaN: the
    tile has no georeference or is not in the archive). Computed once per index and archive."""
    cached = _centres_cache.get(index)
    if cached is not None and cached[0] is archive:
        return cached[1]
    out = np.full((len(index), 2), np.nan)
    if archive is not None:
        for i, rel in enumerate(index.paths):
            a = archive.find(rel)
            if a is not None:
                c = archive.records[a].georef.center_lonlat
                if c is not None:
                    out[i] = c
    try:
        _centres_cache[index] = (archive, out)
    except TypeError:  # an index type that cannot be weakly referenced: not cached
        pass
    return out


def area_mask(index: HashIndex, area: Sequence[float], archive) -> np.ndarray:
    """(N,) bool: the index positions whose tile centre lies in ``area``. The index holds no
    positions, so the archive it was built from must be open."""
    if archive is None:
        raise ValueError("an area filter needs the archive open: the index holds no positions")
    return centres_in_area(index_centres(index, archive), check_area(area))


def search_allowed(
    index: HashIndex, codes: np.ndarray, k: int, allowed: np.ndarray, own: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of one query among the ``allowed`` positions only (``own`` left out), as
    :meth:`HashIndex.search` returns it: (1, <=k) positions and distances / similarities, ties
    by archive order. Only the allowed codes are scanned when the index holds them in memory."""
    keep = np.array(allowed, bool, copy=True).reshape(-1)
    if own is not None and 0 <= own < keep.size:
        keep[own] = False
    pos = np.flatnonzero(keep)
    binary = index.meta.kind == "binary"
    if pos.size == 0:
        return np.zeros((1, 0), np.int64), np.zeros((1, 0), np.int32 if binary else np.float32)
    codes = np.asarray(codes).reshape(1, -1)
    if binary and getattr(index, "codes", None) is not None:
        from rsgui.codes import pack_codes
        from rsgui.hamming import PackedCodes, hamming_topk

        i, d = hamming_topk(PackedCodes(index.codes[pos], index.meta.bits), pack_codes(codes), k)
        return pos[i], d
    if not binary and getattr(index, "features", None) is not None:
        from rsgui.cosine import cosine_topk

        i, sim = cosine_topk(index.unit_features()[pos], codes, k, normalised=True)
        return pos[i], sim
    idx, score = index.search(codes, len(index))  # any other index: rank all, keep the allowed
    hit = keep[idx[0]]
    return idx[:, hit][:, :k], score[:, hit][:, :k]


def search_job(
    index: HashIndex, queries: Sequence, k: int, *, archive=None, encoder=None
) -> Job[list[SearchResults]]:
    """:func:`search` for each query in turn (one :class:`Progress` each, stage ``"search"``)."""
    encoder = encoder or encoder_for_index(index)
    out: list[SearchResults] = []
    for done, q in enumerate(queries, start=1):
        out.append(search(index, q, k, archive=archive, encoder=encoder))
        yield Progress(done, len(queries), "searching", stage="search")
    return out


def _reads_alike(archive, meta) -> bool:
    """The open archive scales and names bands as the index did, so its pixels can be used."""
    return bool(
        archive is not None
        and meta.normalisation
        and archive.normalisation == Normalisation.from_dict(meta.normalisation)
        and all(b in archive.band_names for b in meta.band_names)
    )


def _query_label(archive, index: HashIndex, ref) -> str | None:
    """The query's class: its archive record's label, else its folder when that names a class."""
    if archive is not None:
        i = ref.archive_index if ref.archive_index is not None else archive.find(ref.path)
        if i is not None:
            return archive.records[i].label
    parent = Path(ref.path).parent.name
    known = set(index.classes) | (set(archive.classes) if archive is not None else set())
    return parent if parent in known else None


# -- where the tiles lie --------------------------------------------------------------------------


def locate(results: SearchResults, archive=None) -> tuple[Any, SearchResults]:
    """``(query georef, results with lon/lat and footprints)``, from the open archive's records
    when the tiles are there, else from the files' headers (None where unknown)."""

    def georef_of(path: str, aidx: int | None):
        if archive is not None:
            i = aidx if aidx is not None else archive.find(path)
            if i is not None:
                return archive.records[i].georef
        try:
            from rsgui.archive import read_tile_file

            return read_tile_file(path, bands=[]).records[0].georef
        except Exception:  # noqa: BLE001 - a tile without georeference has no position
            return None

    rows = []
    for r in results.rows:
        g = georef_of(r.path, r.archive_index)
        lon, lat = g.center_lonlat if g is not None and g.center_lonlat else (None, None)
        foot = g.footprint_lonlat if g is not None else None
        rows.append(replace(r, lon=lon, lat=lat, footprint=foot))
    query_geo = georef_of(str(results.query.path), results.query.archive_index)
    return query_geo, replace(results, rows=rows)


# -- writers --------------------------------------------------------------------------------------


def _rows_of(results: SearchResults | Sequence[SearchResults], k: int | None) -> list:
    many = [results] if isinstance(results, SearchResults) else list(results)
    return [r for res in many for r in (res.rows[:k] if k else res.rows)]


def _cell(column: str, value) -> object:
    if value is None:
        return ""
    if column == "distance" and isinstance(value, float):
        return f"{value:.6f}"
    if column == "correct":
        return int(value)
    return value


def results_csv(results: SearchResults | Sequence[SearchResults], k: int | None = None) -> str:
    """CSV text with :data:`RESULT_COLUMNS`, one row per result, queries in order."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RESULT_COLUMNS)
    for r in _rows_of(results, k):
        d = r.as_dict()
        w.writerow([_cell(c, d[c]) for c in RESULT_COLUMNS])
    return buf.getvalue()


def results_json(results: SearchResults | Sequence[SearchResults], k: int | None = None) -> str:
    """JSON text: a list of results, each an object with :data:`RESULT_COLUMNS`."""
    return json.dumps([r.as_dict() for r in _rows_of(results, k)], indent=2) + "\n"


def results_geojson(results: SearchResults, query_georef=None, k: int | None = None) -> dict:
    """GeoJSON FeatureCollection: tile footprints (lon/lat) with the result columns; the query
    comes first with ``"role": "query"`` and rank 0. Pass :func:`locate`'s output."""

    def geometry(footprint, center):
        if footprint:
            return {"type": "Polygon", "coordinates": [[list(p) for p in footprint]]}
        if center is not None and center[0] is not None:
            return {"type": "Point", "coordinates": list(center)}
        return None

    rows = results.rows[:k] if k else results.rows
    g = query_georef
    qcenter = g.center_lonlat if g is not None and g.center_lonlat else (None, None)
    query = {c: None for c in RESULT_COLUMNS}
    query.update(query=str(results.query.path), rank=0, path=str(results.query.path), distance=0,
                 label=results.query_label, lon=qcenter[0], lat=qcenter[1])  # fmt: skip
    feats = [
        {
            "type": "Feature",
            "geometry": geometry(g.footprint_lonlat if g is not None else None, qcenter),
            "properties": {"role": "query", **query},
        }
    ]
    for r in rows:
        feats.append(
            {
                "type": "Feature",
                "geometry": geometry(r.footprint, (r.lon, r.lat)),
                "properties": {"role": "result", **r.as_dict()},
            }
        )
    props: dict[str, Any] = {"method": results.method, "bits": results.bits, "k": len(rows)}
    if results.examples or results.negatives:
        props.update(
            examples=[str(e.path) for e in results.examples],
            negatives=[str(e.path) for e in results.negatives],
            strategy=results.strategy,
        )
    if results.filters:
        props["filters"] = results.filters
    return {"type": "FeatureCollection", "properties": props, "features": feats}


def check_export_target(path, index_path=None, archive_root=None) -> None:
    """Refuse to write an export over a file that is not a previous export: an index or model
    half (their JSON halves included), a tile or any binary file, or any file of the indexed
    archive. :class:`rsgui.errors.JobError` names the file and what it is."""
    target = Path(path)
    try:
        real = target.resolve()
    except (OSError, RuntimeError):
        real = target.absolute()
    if archive_root:
        try:
            real.relative_to(Path(archive_root).resolve())
        except ValueError:
            pass
        else:
            raise JobError(f"{target}: lies inside the indexed archive {archive_root}; "
                           "write the export elsewhere")  # fmt: skip
    if index_path is not None and real in {p.resolve() for p in index_paths(index_path)}:
        raise JobError(f"{target}: is the index being read; write the export elsewhere")
    if not os.path.lexists(target):
        return
    if not target.is_file():
        raise JobError(f"{target}: exists and is not a plain file; choose another name")
    try:
        with open(target, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise JobError(f"{target}: exists and cannot be read ({e.strerror or e})") from None
    what = None
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+") or head[:3] == b"\xff\xd8\xff":
        what = "an image tile"
    elif head[:4] == b"\x89PNG":
        what = "an image tile"
    elif head[:4] == b"PK\x03\x04":
        what = "an index or other archive file"
    elif target.suffix.lower() == ".safetensors" or b"\x00" in head:
        what = "a model or other binary file"
    elif b'"rsgui-index"' in head or b'"rsgui-checkpoint"' in head:
        what = "the settings half of an index or a model"
    if what is not None:
        raise JobError(f"{target}: exists and is {what}, not an export; refused to overwrite it")


def write_results(
    results: SearchResults | Sequence[SearchResults],
    fmt: str,
    out=None,
    k: int | None = None,
    archive=None,
    *,
    index_path=None,
    archive_root=None,
) -> str:
    """Results as ``csv``, ``json`` or ``geojson`` (one query) text, positions looked up first
    (:func:`locate`); written atomically to ``out`` when given, never over an index, a model, a
    tile or a file of the archive (:func:`check_export_target`)."""
    many = [results] if isinstance(results, SearchResults) else list(results)
    located = [locate(res, archive) for res in many]
    if fmt == "csv":
        text = results_csv([res for _, res in located], k)
    elif fmt == "json":
        text = results_json([res for _, res in located], k)
    elif fmt == "geojson":
        if len(located) != 1:
            raise ValueError("a GeoJSON export holds the results of one query")
        geo, res = located[0]
        text = json.dumps(results_geojson(res, geo, k), indent=1)
    else:
        raise ValueError(f"unknown format {fmt!r}; choose csv, json or geojson")
    if out is not None:
        check_export_target(
            out,
            index_path or next((r.index_path for r in many if r.index_path), None),
            archive_root or getattr(archive, "root", None),
        )
        atomic_write_bytes(out, encode_text(text))
    return text


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of an export; a file name that is not valid UTF-8 (read from disk as
    surrogates) is written with its own bytes, so the path in the export opens that file."""
    return text.encode("utf-8", "surrogateescape")


def export_results(
    results: SearchResults, path: str | Path, archive=None, k: int | None = None
) -> Path:
    """Write one query's results atomically: GeoJSON for ``.geojson`` / ``.json``, else CSV."""
    path = Path(path)
    fmt = "geojson" if path.suffix.lower() in (".geojson", ".json") else "csv"
    write_results(results, fmt, path, k, archive)
    return path
