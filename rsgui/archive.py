"""An archive: a folder of image tiles with named bands, optional class labels and georeference.

Opening lists the files and reads only their headers (cached in a manifest, so the second open
of 27,000 tiles takes well under two seconds); pixels are read later, in batches, and only the
bands asked for. Files that cannot serve as tiles are skipped and listed in ``problems``.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from rsgui import manifest as mf
from rsgui.bands import (
    BAND_SETS,
    EUROSAT_MS_ORDER,
    EUROSAT_RGB_ORDER,
    PRESETS,
    MissingBandsError,
    Normalisation,
    band_indices,
    resolve_band_set,
)
from rsgui.geo import georef_from_entry, lonlat_many
from rsgui.tiles import Problem, TileBatch, TileRecord

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
BandSpec = str | tuple[str, ...] | list[str]

TIF_EXTENSIONS = (".tif", ".tiff")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


class TileReadError(ValueError):
    """A tile file cannot be used; the message names the file: ``"PATH: reason"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def default_band_names(count: int) -> tuple[str, ...]:
    """Band names for a file without descriptions and without a configured order."""
    if count == 13:
        return EUROSAT_MS_ORDER
    if count == 3:
        return EUROSAT_RGB_ORDER
    return tuple(f"band{i + 1}" for i in range(count))


def _file_band_names(
    entry: dict, override: tuple[str, ...] | None, preset_names: tuple[str, ...]
) -> tuple[tuple[str, ...] | None, str]:
    """(names, source). Descriptions in the file win: they travel with the pixels."""
    count = entry["count"]
    desc = mf.parse_descriptions(entry.get("descriptions"))
    if desc is not None:
        return desc, "file"
    if override:
        return (override, "setting") if len(override) == count else (None, "setting")
    if preset_names:
        return (preset_names, "preset") if len(preset_names) == count else (None, "preset")
    return default_band_names(count), "default"


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


def _read_pixels(
    path: str,
    indexes: list[int],
    shape: tuple[int, int, int] | None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Read 1-based ``indexes`` of one file; TileReadError on any failure or a changed shape."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if shape is not None and (src.count, src.height, src.width) != shape:
                    raise TileReadError(
                        path,
                        f"changed since the archive was opened: now {src.count} bands of "
                        f"{src.width}x{src.height} pixels, expected {shape[0]} of "
                        f"{shape[2]}x{shape[1]}",
                    )
                return src.read(indexes, out=out)
    except TileReadError:
        raise
    except FileNotFoundError:
        raise TileReadError(path, "file not found (moved or deleted?)") from None
    except Exception as e:
        if not os.path.exists(path):
            raise TileReadError(path, "file not found (moved or deleted?)") from None
        raise TileReadError(path, f"cannot read pixels ({mf._first_line(e)})") from e


def _normalise(raw: np.ndarray, norm: Normalisation, out: np.ndarray) -> None:
    np.minimum(raw, norm.clip, out=out, dtype=np.float32, casting="unsafe")
    out /= np.float32(norm.divisor)


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
        file_bands: dict[int, tuple[str, ...]] | None = None,
        band_source: str = "",
        cache_path: Path | None = None,
        cache_hit: bool = False,
    ):
        self.root = root
        self.preset = preset
        self.band_names = band_names
        self.tile_shape = tile_shape
        self.normalisation = normalisation
        self.records = records
        self.problems = problems
        self.band_source = (
            band_source  # where the band order came from: file|setting|preset|default
        )
        self.cache_path = cache_path
        self.cache_hit = cache_hit  # True when no header had to be read
        self._file_bands = file_bands or {}
        labelled = [r.label for r in records if r.label is not None]
        self.classes = tuple(sorted(set(labelled)))
        cls_index = {c: i for i, c in enumerate(self.classes)}
        self.labels = np.array(
            [cls_index[r.label] if r.label is not None else -1 for r in records], dtype=np.int64
        )
        self._by_path = {r.path: r.index for r in records}

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
    ) -> Archive:
        """Scan ``root`` (headers only; cached) and decide preset, band order, shape and labels."""
        root = Path(root).expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"{root}: archive folder not found")
        if not root.is_dir():
            raise NotADirectoryError(f"{root}: an archive is a folder of tiles, not a file")
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        override = _parse_band_order(band_names)

        preset_given = preset is not None
        listing = mf.list_files(root, mf.RASTER_EXTENSIONS)
        problems: list[Problem] = []
        if preset is None:
            n_tif = sum(1 for f in listing if f[0].lower().endswith(TIF_EXTENSIONS))
            n_img = len(listing) - n_tif
            family = IMAGE_EXTENSIONS if n_img > n_tif else TIF_EXTENSIONS
        else:
            family = tuple(e.lower() for e in PRESETS[preset].extensions)
        wanted: list[mf.FileStat] = []
        for f in listing:
            if f[0].lower().endswith(family):
                wanted.append(f)
            else:
                ext = os.path.splitext(f[0])[1]
                problems.append(
                    Problem(f[0], f"a {ext} file in an archive of {'/'.join(family)} tiles")
                )

        # headers: from the cache when (size, mtime_ns) match, else read now
        caches = mf.load_manifests(root) if use_cache else []
        entries: dict[str, dict] = {}
        todo: list[str] = []
        from_second = False
        for rel, size, mtime, _is_dir in wanted:
            for k, cache in enumerate(caches):
                hit = cache.get(rel)
                if hit and hit[0] == size and hit[1] == mtime:
                    entries[rel] = hit[2]
                    from_second |= k > 0
                    break
            else:
                todo.append(rel)
        total = len(wanted)
        if todo:
            heads = mf.read_headers(
                root, todo, progress, workers, done_before=total - len(todo), total=total
            )
            need_ll = [(i, h) for i, h in enumerate(heads) if h.get("crs")]
            lls = lonlat_many([(h["crs"], tuple(h["bounds"])) for _, h in need_ll])
            for (_, h), ll in zip(need_ll, lls, strict=True):
                h["lonlat"] = ll
            entries.update(zip(todo, heads, strict=True))
        elif progress:
            progress(total, total)
        cache_path = None
        stale = bool(todo) or from_second or not caches or len(caches[0]) != len(wanted)
        if use_cache and stale:
            files = {rel: [size, mtime, entries[rel]] for rel, size, mtime, _ in wanted}
            cache_path = mf.save_manifest(root, files)
        elif use_cache:
            cache_path = mf.archive_cache_path(root)

        # choose preset, shape, band order; flag the odd ones out
        ok = [(rel, entries[rel]) for rel, *_ in wanted if "problem" not in entries[rel]]
        for rel, *_ in wanted:
            if "problem" in entries[rel]:
                problems.append(Problem(rel, entries[rel]["problem"]))
        shapes = Counter((e["count"], e["height"], e["width"]) for _, e in ok)
        shape = shapes.most_common(1)[0][0] if shapes else (0, 0, 0)
        if preset is None:
            if family == IMAGE_EXTENSIONS:
                preset = "eurosat-rgb"
            else:
                no_desc = sum(1 for _, e in ok if not e.get("descriptions"))
                preset = "eurosat-ms" if shape[0] == 13 and no_desc * 2 > len(ok) else "geotiff"
        p = PRESETS[preset]
        if override and ok and len(override) != shape[0]:
            raise ValueError(
                f"the band order names {len(override)} bands but the tiles of {root} have "
                f"{shape[0]}"
            )
        good: list[tuple[str, dict, tuple[str, ...], str]] = []
        for rel, e in ok:
            c, h, w = e["count"], e["height"], e["width"]
            if (h, w) != shape[1:]:
                problems.append(
                    Problem(
                        rel, f"is {w}x{h} pixels, the archive's tiles are {shape[2]}x{shape[1]}"
                    )
                )
                continue
            if c != shape[0]:
                problems.append(Problem(rel, f"has {c} bands, the archive's tiles have {shape[0]}"))
                continue
            names, source = _file_band_names(e, override, p.band_names)
            if names is None:
                problems.append(Problem(rel, f"{c} bands but no band order for them"))
                continue
            good.append((rel, e, names, source))
        orders = Counter(names for _, _, names, _ in good)
        band_order = orders.most_common(1)[0][0] if orders else tuple(p.band_names)
        sources = Counter(src for _, _, names, src in good if names == band_order)
        band_source = sources.most_common(1)[0][0] if sources else ""
        kept = []
        for item in good:
            if set(item[2]) != set(band_order):
                problems.append(
                    Problem(
                        item[0],
                        f"bands {', '.join(item[2])} differ from the archive's "
                        f"{', '.join(band_order)}",
                    )
                )
            else:
                kept.append(item)

        # EuroSAT layout: every tile sits in a first-level class folder. A preset chosen by the
        # user that says "labelled" labels by the first folder however deep the file is.
        explicit_labels = p.labelled and preset_given
        labelled = bool(kept) and (explicit_labels or all(rel.count("/") == 1 for rel, *_ in kept))
        records: list[TileRecord] = []
        file_bands: dict[int, tuple[str, ...]] = {}
        for i, (rel, e, names, _) in enumerate(kept):
            label = rel.split("/", 1)[0] if labelled and "/" in rel else None
            records.append(
                TileRecord(i, rel, label, e["height"], e["width"], e["count"], georef_from_entry(e))
            )
            if names != band_order:
                file_bands[i] = names
        if normalisation is None:
            normalisation = p.normalisation
            dtypes = Counter(e["dtype"] for _, e, _, _ in kept)
            if preset == "geotiff" and dtypes and dtypes.most_common(1)[0][0] == "uint8":
                normalisation = Normalisation(255.0, 255.0)
        problems.sort(key=lambda pr: pr.path)
        return cls(
            root,
            preset,
            tuple(band_order),
            (shape[1], shape[2]),
            normalisation,
            records,
            problems,
            file_bands,
            band_source,
            cache_path,
            cache_hit=not todo,
        )

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self.records)

    def path_of(self, index: int) -> Path:
        """Absolute path of record ``index``."""
        return self.root / self.records[index].path

    def _indexes_for(self, i: int, names: tuple[str, ...]) -> list[int]:
        order = self._file_bands.get(i, self.band_names)
        return [k + 1 for k in band_indices(order, names)]

    def _shape(self) -> tuple[int, int, int]:
        return (len(self.band_names), *self.tile_shape)

    def read(self, indices: int | Iterable[int], bands: BandSpec = "all") -> TileBatch:
        """Normalised float32 pixels (N, C, H, W) of the given records, bands in the order asked."""
        import rasterio

        names = _norm_bands(bands, self.band_names)
        idx = [int(i) for i in np.atleast_1d(np.asarray(indices, dtype=np.int64))]
        h, w = self.tile_shape
        out = np.empty((len(idx), len(names), h, w), dtype=np.float32)
        raw = None
        with rasterio.Env(**mf.GDAL_ENV):
            for j, i in enumerate(idx):
                if i < 0 or i >= len(self.records):
                    raise IndexError(f"tile index {i} out of range (archive has {len(self)})")
                raw = _read_pixels(
                    str(self.path_of(i)), self._indexes_for(i, names), self._shape(), out=raw
                )
                _normalise(raw, self.normalisation, out[j])
        return TileBatch(out, names, [self.records[i] for i in idx])

    def read_raw(self, index: int) -> np.ndarray:
        """(C, H, W) file values of every band, in ``band_names`` order (for statistics views)."""
        import rasterio

        with rasterio.Env(**mf.GDAL_ENV):
            return _read_pixels(
                str(self.path_of(index)), self._indexes_for(index, self.band_names), self._shape()
            )

    def iter_batches(
        self,
        bands: BandSpec = "all",
        batch_size: int = 256,
        indices: Iterable[int] | None = None,
    ) -> Iterator[TileBatch]:
        """Batches of :meth:`read` over all records (or ``indices``), in order."""
        idx = np.arange(len(self)) if indices is None else np.asarray(list(indices), np.int64)
        _norm_bands(bands, self.band_names)  # fail before the first read
        for start in range(0, len(idx), batch_size):
            yield self.read(idx[start : start + batch_size], bands)

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


def _parse_band_order(band_names: Iterable[str] | str | None) -> tuple[str, ...] | None:
    """A user band order (``"B01,B02,...,B8A"`` or a list) -> canonical names, checked."""
    if band_names is None:
        return None
    items = band_names.split(",") if isinstance(band_names, str) else list(band_names)
    items = [s.strip() for s in items if s and s.strip()]
    if not items:
        return None
    names = []
    for s in items:
        n = mf.parse_band_name(s)
        if n is None:
            raise ValueError(f"band order: {s!r} is not a Sentinel-2 band name (B01..B12, B8A)")
        names.append(n)
    if len(set(names)) != len(names):
        raise ValueError("band order: a band is named twice")
    return tuple(names)


def read_tile_file(
    path: str | os.PathLike,
    band_names: Iterable[str] | str | None = None,
    normalisation: Normalisation | None = None,
    bands: BandSpec = "all",
    expected_shape: tuple[int, ...] | None = None,
) -> TileBatch:
    """One tile from anywhere (a query). Band names come from the file's descriptions, else
    ``band_names``, else its band count (13 -> EuroSAT MS order, 3 -> RGB). Raises
    :class:`TileReadError` naming the file and what is wrong with it."""
    import rasterio

    p = Path(path).expanduser()
    pstr = str(p)
    override = _parse_band_order(band_names)
    with rasterio.Env(**mf.GDAL_ENV):
        e = mf.read_header(p)
    if "problem" in e:
        raise TileReadError(pstr, e["problem"])
    c, h, w = e["count"], e["height"], e["width"]
    if expected_shape is not None:
        exp_hw = tuple(expected_shape[-2:])
        if (h, w) != exp_hw:
            raise TileReadError(
                pstr, f"is {w}x{h} pixels, the index expects tiles of {exp_hw[1]}x{exp_hw[0]}"
            )
    desc = mf.parse_descriptions(e.get("descriptions"))
    if desc is not None:
        names = desc
    elif override is not None:
        if len(override) != c:
            raise TileReadError(
                pstr, f"has {c} bands, but the band order given names {len(override)}"
            )
        names = override
    else:
        names = default_band_names(c)
    try:
        wanted = _norm_bands(bands, names)
    except MissingBandsError as err:
        plain = "" if desc or override or c in (3, 13) else " and no band names"
        need = ", ".join(_requested(bands) or err.missing)
        raise TileReadError(
            pstr,
            f"has {c} bands{plain} ({', '.join(names)}); the index needs {need} "
            f"(missing {', '.join(err.missing)})",
        ) from None
    if normalisation is None:
        normalisation = Normalisation(255.0, 255.0) if e["dtype"] == "uint8" else Normalisation()
    with rasterio.Env(**mf.GDAL_ENV):
        raw = _read_pixels(pstr, [names.index(b) + 1 for b in wanted], (c, h, w))
    out = np.empty((1, len(wanted), h, w), dtype=np.float32)
    _normalise(raw, normalisation, out[0])
    if e.get("crs"):
        e["lonlat"] = lonlat_many([(e["crs"], tuple(e["bounds"]))])[0]
    rec = TileRecord(0, p.resolve().as_posix(), None, h, w, c, georef_from_entry(e))
    return TileBatch(out, wanted, [rec])
