"""BigEarthNet patches: a folder per patch, one GeoTIFF per band, labels in a JSON sidecar.

A BigEarthNet patch folder ``<name>/`` holds ``<name>_B01.tif`` ... ``<name>_B12.tif`` (12 bands,
no B10) at their native resolution (120x120 px at 10 m, 60x60 at 20 m, 20x20 at 60 m) and
``<name>_labels_metadata.json`` with the multi-label ground truth (``labels``: the 43-class
nomenclature; ``labels_19`` where present). v1 names (``S2A_MSIL2A_20170613T101031_39_24``) and
v2 names (``..._N9999_R022_T33UUP_26_57``) follow the same pattern, so both are read alike.

:func:`open_patches` makes one record per patch, its bands stacked at 10 m: the 20 m and 60 m
bands are upsampled with a cubic spline when their pixels are read (as EuroSAT was made), so an
archive of patches looks like any other 12-band archive to the rest of the program. Only headers
are read at open time (a real BigEarthNet has 590,000 patches), and they are cached in
``<root>/.rsgui/patches.json`` keyed by each file's size and time.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsgui import tiff_header as th
from rsgui.atomic import atomic_write_text
from rsgui.bands import BAND_RESOLUTION_M, S2_BANDS, Normalisation
from rsgui.errors import TileReadError
from rsgui.geo import georef_from_entry, lonlat_many
from rsgui.safeload import read_json
from rsgui.sources import OpenedSource
from rsgui.tiles import GeoRef, Problem, TileRecord

PRESET = "bigearthnet"
# The 12 bands of a patch in the canonical spectral order of rsgui.bands (B10 is not delivered).
PATCH_BANDS: tuple[str, ...] = tuple(b for b in S2_BANDS if b != "B10")
LABELS_SUFFIX = "_labels_metadata.json"
BAND_EXTENSIONS = (".tif", ".tiff")
# L2A reflectance x 10000: the same scale as EuroSAT's 12-bit values, so models trained there apply
NORMALISATION = Normalisation(4095.0, 4095.0)
LABELS_MAX_BYTES = 64 << 10  # a real labels file is a few hundred bytes
MAX_LABELS = 100  # the nomenclature has 43 classes
MAX_LABEL_CHARS = 200
CACHE_NAME = "patches.json"
CACHE_VERSION = 2
CACHE_MAX_BYTES = 1 << 30  # about 120 bytes a patch: 590,000 patches make about 70 MB

# The 19-class nomenclature (Sumbul et al. 2020). BigEarthNet v2 ships only these in ``labels``;
# v1 ships the 43 classes in ``labels`` and these in ``labels_19``.
BEN19_LABELS: frozenset[str] = frozenset({
    "Urban fabric", "Industrial or commercial units", "Arable land", "Permanent crops",
    "Pastures", "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation", "Transitional woodland, shrub",
    "Beaches, dunes, sands", "Inland wetlands", "Coastal wetlands", "Inland waters",
    "Marine waters",
})  # fmt: skip

_BAND_RE = re.compile(r"_(B(?:0[1-9]|1[0-2]|8A))\.tiff?$", re.IGNORECASE)

Progress = Callable[[int, int], None]


class PatchLabelsError(ValueError):
    """A labels file that cannot be used; the message names the file."""


def _band_files(folder_name: str, file_names: list[str]) -> dict[str, str]:
    """``{band: file name}`` of the band files named after ``folder_name``."""
    out: dict[str, str] = {}
    prefix = folder_name + "_"
    for f in file_names:
        if not f.startswith(prefix):
            continue
        m = _BAND_RE.search(f)
        if m and m.start() == len(folder_name):
            out.setdefault(m.group(1).upper(), f)
    return out


def looks_like_patch_folder(folder_name: str, file_names: list[str]) -> bool:
    """True when ``file_names`` (the names in folder ``folder_name``) look like a BigEarthNet
    patch: band files ``<folder_name>_Bxx.tif`` with the labels JSON, or most of the bands.

    Lenient on purpose: a patch with a missing band must still be recognised, so that it is
    reported as a broken patch rather than silently ignored."""
    bands = _band_files(folder_name, file_names)
    if not bands:
        return False
    has_labels = (folder_name + LABELS_SUFFIX) in file_names
    return has_labels or len(bands) >= len(PATCH_BANDS) // 2


# ----------------------------------------------------------------------------------- labels
def read_labels(path: str | os.PathLike) -> tuple[list[str], list[str] | None]:
    """``(labels, labels_19 or None)`` of a labels JSON; PatchLabelsError naming the file when it
    is too large, not JSON, nested too deeply or not of the expected form."""
    value = read_json(path, PatchLabelsError, max_bytes=LABELS_MAX_BYTES, what="labels file")
    if not isinstance(value, dict):
        raise PatchLabelsError(f"{path}: not a labels file (expected a JSON object)")
    labels = _label_list(value.get("labels"), path, "labels")
    if labels is None:
        raise PatchLabelsError(f"{path}: no 'labels' list")
    return labels, _label_list(value.get("labels_19"), path, "labels_19")


def _label_list(v: object, path: str | os.PathLike, key: str) -> list[str] | None:
    if v is None:
        return None
    if not isinstance(v, list) or len(v) > MAX_LABELS:
        raise PatchLabelsError(f"{path}: {key!r} is not a list of at most {MAX_LABELS} names")
    out: list[str] = []
    for s in v:
        if not isinstance(s, str) or not s.strip() or len(s) > MAX_LABEL_CHARS:
            raise PatchLabelsError(f"{path}: {key!r} holds something that is not a label name")
        if s.strip() not in out:
            out.append(s.strip())
    return out


# ----------------------------------------------------------------------------------- reading
@dataclass
class _Patch:
    """What open time learnt about one patch folder."""

    rel: str  # archive-relative POSIX path of the folder
    files: dict[str, str]  # band -> file name
    sizes: dict[str, tuple[int, int]]  # band -> native (height, width)
    labels: list[str]
    labels_19: list[str] | None
    stat: tuple[int, int]  # total size, newest mtime_ns of the folder's files
    georef: dict | None = None


class PatchReader:
    """Pixels of the patches of one archive, the 20 m and 60 m bands upsampled to 10 m."""

    def __init__(self, root: Path, patches: list[_Patch], tile_shape: tuple[int, int]):
        self.root = root
        self.patches = patches
        self.tile_shape = tile_shape
        self.band_names = PATCH_BANDS
        # each patch's own ``labels`` and ``labels_19``; the archive's label sets use one of them
        self.labels = [p.labels for p in patches]
        self.labels_19 = [p.labels_19 for p in patches]
        self.nomenclature = "43"  # or "19": which classes the archive's label sets use

    def path_of(self, index: int) -> Path:
        return self.root / self.patches[index].rel

    def stats(self) -> np.ndarray:
        """(N, 3): total size and newest mtime_ns of each patch folder's files, no content check."""
        out = np.zeros((len(self.patches), 3), np.int64)
        for i, p in enumerate(self.patches):
            out[i, :2] = p.stat
        return out

    def read(self, index: int, band_indexes: list[int]) -> np.ndarray:
        """File values (len(band_indexes), H, W) at 10 m; cubic-spline upsampled where coarser."""
        import rasterio
        from rasterio.enums import Resampling

        p = self.patches[index]
        h, w = self.tile_shape
        out: np.ndarray | None = None
        th.quiet_georeference_warnings()
        for k, b in enumerate(band_indexes):
            band = self.band_names[b - 1]
            path = self.path_of(index) / p.files[band]
            try:
                with rasterio.open(path) as src:
                    if (src.height, src.width) != p.sizes[band] or src.count != 1:
                        raise TileReadError(
                            path,
                            f"changed since the archive was opened: now {src.count} band(s) of "
                            f"{src.width}x{src.height} pixels, expected 1 of "
                            f"{p.sizes[band][1]}x{p.sizes[band][0]}",
                        )
                    if (src.height, src.width) == (h, w):
                        a = src.read(1)
                    else:
                        a = src.read(1, out_shape=(h, w), resampling=Resampling.cubic_spline)
            except TileReadError:
                raise
            except Exception as e:
                if not path.exists():
                    raise TileReadError(path, "file not found (moved or deleted?)") from None
                raise TileReadError(path, f"cannot read pixels ({th.first_line(e)})") from e
            if out is None:
                out = np.empty((len(band_indexes), h, w), a.dtype)
            out[k] = a
        if out is None:
            return np.empty((0, h, w), np.uint16)
        return out


def _all_19(patches: list[_Patch]) -> bool:
    return all(p.labels_19 is not None or set(p.labels) <= BEN19_LABELS for p in patches)


def archive_labels(patches: list[_Patch]) -> list[list[str]]:
    """Each patch's label set in one nomenclature for the whole archive.

    v1 patches label in 43 classes (``labels``) and 19 (``labels_19``), v2 patches only in 19
    (``labels``). A union of ``labels`` would mix both and make a v1 "Sea and ocean" patch never
    match a v2 "Marine waters" one, so the 19 classes are used whenever every patch has them;
    otherwise (an all-v1 archive without ``labels_19``) the 43-class ``labels``."""
    if _all_19(patches):
        return [p.labels_19 if p.labels_19 is not None else p.labels for p in patches]
    return [p.labels for p in patches]


def _expected_size(band: str, base: tuple[int, int]) -> tuple[int, int] | None:
    """Native size of ``band`` for a patch whose 10 m bands are ``base``; None if not whole."""
    r = BAND_RESOLUTION_M[band]
    h, w = base
    if (h * 10) % r or (w * 10) % r:
        return None
    return h * 10 // r, w * 10 // r


def _folder_signature(folder: Path, names: list[str]) -> tuple[str, tuple[int, int]]:
    """A key that changes when any file of the folder changes, and (total size, newest mtime)."""
    h = hashlib.blake2b(digest_size=12)
    total, newest = 0, 0
    for n in sorted(names):
        try:
            st = os.stat(folder / n)
        except OSError:
            continue
        total += st.st_size
        newest = max(newest, st.st_mtime_ns)
        h.update(f"{n}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest(), (total, newest)


def patch_folder_stats(folder: str | os.PathLike) -> tuple[int, int, int]:
    """(total size, newest mtime_ns, 0) of a patch folder's files now: what
    :meth:`PatchReader.stats` recorded at open time, for telling a changed patch later (an
    index's change detection stats the folder instead of a tile file)."""
    folder = Path(folder)
    names = [e.name for e in os.scandir(folder) if not e.is_dir()]
    _sig, (size, newest) = _folder_signature(folder, names)
    return size, newest, 0


def _in(rel: str, name: str) -> str:
    """Archive-relative path of file ``name`` of the patch folder ``rel``."""
    return name if rel in ("", ".") else f"{rel}/{name}"


def _scan_patch(folder: Path, rel: str, names: list[str], st: tuple[int, int]) -> _Patch | Problem:
    """The patch in ``folder`` from its headers and labels, or the Problem that skips it."""
    files = _band_files(folder.name, names)
    missing = [b for b in PATCH_BANDS if b not in files]
    if missing:
        return Problem(
            rel, f"missing band file(s) {', '.join(f'{folder.name}_{b}.tif' for b in missing)}"
        )
    sizes: dict[str, tuple[int, int]] = {}
    georef = None
    for b in PATCH_BANDS:
        e = th.read_header(folder / files[b])
        if "problem" in e:
            return Problem(_in(rel, files[b]), e["problem"])
        if e["count"] != 1:
            return Problem(_in(rel, files[b]), f"has {e['count']} bands, a patch band file has 1")
        sizes[b] = (int(e["height"]), int(e["width"]))
        if b == "B02" and e.get("crs"):
            georef = {"crs": e["crs"], "bounds": e.get("bounds")}
    base = sizes["B02"]
    for b in PATCH_BANDS:
        want = _expected_size(b, base)
        if sizes[b] != want:
            exp = f"{want[1]}x{want[0]}" if want else "a whole fraction of the 10 m size"
            return Problem(
                _in(rel, files[b]),
                f"{sizes[b][1]}x{sizes[b][0]} pixels, expected {exp} for a "
                f"{BAND_RESOLUTION_M[b]} m band beside {base[1]}x{base[0]} at 10 m",
            )
    label_file = folder.name + LABELS_SUFFIX
    if label_file not in names:
        return Problem(rel, f"missing labels file {label_file}")
    try:
        labels, labels_19 = read_labels(folder / label_file)
    except PatchLabelsError as e:
        return Problem(_in(rel, label_file), str(e).split(": ", 1)[-1])
    except FileNotFoundError:
        return Problem(_in(rel, label_file), "file not found")
    return _Patch(rel, files, sizes, labels, labels_19, st, georef)


def find_patch_folders(root: Path) -> list[tuple[Path, str, list[str]]]:
    """``(folder, rel, file names)`` of every patch folder under ``root`` (root included),
    hidden folders skipped, in path order so the record order is stable."""
    out: list[tuple[Path, str, list[str]]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        folder = Path(dirpath)
        if looks_like_patch_folder(folder.name, filenames):
            rel = folder.relative_to(root).as_posix()
            out.append((folder, rel, sorted(filenames)))  # "." when root is a patch
    out.sort(key=lambda t: t[1])
    return out


# ----------------------------------------------------------------------------------- cache
def _cache_path(root: Path) -> Path:
    """In the archive when it may be written (as the manifest), else in the user cache: a
    folder shared read-only is never written into, even by an administrator."""
    from rsgui import manifest as mf
    from rsgui.paths import user_cache_dir

    if mf.archive_writable(root):
        return root / mf.CACHE_DIR_NAME / CACHE_NAME
    return user_cache_dir(root) / CACHE_NAME


def _load_cache(path: Path) -> dict[str, list]:
    """``{rel: entry}`` of a cache file, or {} for a missing, damaged or foreign one (the cache
    only saves time: it is never worth an error)."""
    try:
        d = read_json(path, ValueError, max_bytes=CACHE_MAX_BYTES, what="patch cache")
    except (OSError, ValueError):
        return {}
    if not isinstance(d, dict) or d.get("version") != CACHE_VERSION:
        return {}
    entries = d.get("patches")
    return entries if isinstance(entries, dict) else {}


def _to_cache(sig: str, p: _Patch) -> list:
    return [sig, {b: list(v) for b, v in p.sizes.items()}, p.labels, p.labels_19, list(p.stat),
            p.georef]  # fmt: skip


def _checked_georef(g: object) -> dict | None:
    """The CRS and bounds of a cached georeference when they are well formed, else None (its
    lon/lat is recomputed, never trusted)."""
    if not isinstance(g, dict) or not isinstance(g.get("crs"), str) or len(g["crs"]) > 20_000:
        return None
    b = g.get("bounds")
    if not isinstance(b, list) or len(b) != 4 or not all(isinstance(v, int | float) for v in b):
        return None
    if not all(np.isfinite(b)):
        return None
    return {"crs": g["crs"], "bounds": [float(v) for v in b]}


def _from_cache(folder: Path, rel: str, names: list[str], e: object, sig: str) -> _Patch | None:
    """The cached patch when its signature still matches and the entry is well formed. The band
    files come from the folder's own listing, never from the cache, and cached labels pass the
    same checks as a labels file's, so a forged cache cannot point outside the patch."""
    files = _band_files(folder.name, names)
    if set(files) != set(PATCH_BANDS):
        return None
    try:
        s, sizes, labels, labels_19, st, georef = e  # type: ignore[misc]
        if s != sig or set(sizes) != set(PATCH_BANDS):
            return None
        return _Patch(
            rel,
            files,
            {str(b): (int(v[0]), int(v[1])) for b, v in sizes.items()},
            _label_list(labels, rel, "labels") or [],
            _label_list(labels_19, rel, "labels_19"),
            (int(st[0]), int(st[1])),
            _checked_georef(georef),
        )
    except (TypeError, ValueError, IndexError, AttributeError, KeyError):
        return None  # PatchLabelsError included: read the patch afresh


# ----------------------------------------------------------------------------------- opening
def open_patches(
    root: Path, use_cache: bool = True, progress: Progress | None = None
) -> OpenedSource:
    """The BigEarthNet patches under ``root`` as an :class:`OpenedSource` (headers only).

    Broken patches (a band missing or of the wrong size, unreadable labels) are skipped and
    listed in ``problems``; TileReadError (one line) when no patch at all can be read."""
    root = Path(root)
    folders = find_patch_folders(root)
    total = len(folders)
    cache_file = _cache_path(root)
    cached = _load_cache(cache_file) if use_cache else {}
    new_cache: dict[str, list] = {}
    patches: list[_Patch] = []
    problems: list[Problem] = []
    hits = 0
    if progress:
        progress(0, total)
    for done, (folder, rel, names) in enumerate(folders, start=1):
        sig, st = _folder_signature(folder, names)
        p = _from_cache(folder, rel, names, cached[rel], sig) if rel in cached else None
        if p is not None:
            hits += 1
        else:
            got = _scan_patch(folder, rel, names, st)
            if isinstance(got, Problem):
                problems.append(got)
                p = None
            else:
                p = got
        if p is not None:
            patches.append(p)
            new_cache[rel] = _to_cache(sig, p)
        if progress and (done % 256 == 0 or done == total):
            progress(done, total)
    if not patches:
        what = f"{total} patch folder(s), none readable" if total else "no patch folder"
        first = f" (first: {problems[0].path}: {problems[0].reason})" if problems else ""
        raise TileReadError(
            root,
            f"found {what}{first}; expected folders <name>/ holding <name>_B01.tif ... "
            f"<name>_B12.tif ({len(PATCH_BANDS)} bands: {' '.join(PATCH_BANDS)}) and "
            f"<name>{LABELS_SUFFIX}",
        )
    shape_count: dict[tuple[int, int], int] = {}
    for p in patches:
        shape_count[p.sizes["B02"]] = shape_count.get(p.sizes["B02"], 0) + 1
    tile_shape = max(shape_count, key=lambda s: shape_count[s])
    kept = []
    for p in patches:
        if p.sizes["B02"] != tile_shape:
            b = p.sizes["B02"]
            problems.append(
                Problem(
                    p.rel,
                    f"{b[1]}x{b[0]} pixels at 10 m, the archive's patches are "
                    f"{tile_shape[1]}x{tile_shape[0]}",
                )
            )
        else:
            kept.append(p)
    patches = kept
    chosen = archive_labels(patches)
    label_names = tuple(sorted({lab for labs in chosen for lab in labs}))
    col = {n: j for j, n in enumerate(label_names)}
    sets = np.zeros((len(patches), len(label_names)), bool)
    for i, labs in enumerate(chosen):
        sets[i, [col[lab] for lab in labs]] = True
    single = bool(len(patches)) and all(len(labs) == 1 for labs in chosen)
    placed = [p for p in patches if p.georef and p.georef.get("bounds")]
    for p, ll in zip(
        placed, lonlat_many([(p.georef["crs"], p.georef["bounds"]) for p in placed]), strict=True
    ):
        p.georef["lonlat"] = ll  # None when the CRS cannot be converted: the patch stays unplaced
    h, w = tile_shape
    records = [
        TileRecord(
            i,
            p.rel,
            chosen[i][0] if single else None,
            h,
            w,
            len(PATCH_BANDS),
            georef_from_entry(p.georef) if p.georef else GeoRef(),
        )
        for i, p in enumerate(patches)
    ]
    reader = PatchReader(root, patches, tile_shape)
    reader.nomenclature = "19" if _all_19(patches) else "43"
    cache_written = None
    if use_cache and (hits != len(patches) or len(cached) != len(new_cache)):
        try:
            import json

            atomic_write_text(
                cache_file,
                json.dumps({"version": CACHE_VERSION, "patches": new_cache}, separators=(",", ":")),
            )
            cache_written = cache_file
        except OSError:
            cache_written = None  # a read-only archive: open from the headers next time too
    elif use_cache:
        cache_written = cache_file
    problems.sort(key=lambda q: q.path)
    return OpenedSource(
        preset=PRESET,
        band_names=PATCH_BANDS,
        tile_shape=tile_shape,
        normalisation=NORMALISATION,
        records=records,
        problems=problems,
        reader=reader,
        band_source="BigEarthNet band file names",
        label_names=label_names,
        label_sets=sets,
        cache_path=cache_written,
        cache_hit=bool(patches) and hits == len(patches),
    )
