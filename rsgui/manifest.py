"""The manifest: a cache of every file's header that makes re-opening an archive instant.

The first open reads every file's header (see :mod:`rsgui.tiff_header`); the result, problems
included, is cached keyed by (relative path, size, mtime_ns). A warm open then only lists the
folder and stats the files. The cache (``manifest.json`` + ``manifest.npz``) lives in
``ARCHIVE/.rsgui/`` when the archive is writable, else in the user's cache folder
(:func:`rsgui.paths.user_cache_dir`).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsgui.atomic import atomic_path
from rsgui.paths import user_cache_dir
from rsgui.safeload import load_npz, read_json

log = logging.getLogger(__name__)

MANIFEST_VERSION = 4  # 3: per-file content checks; 4: pixels screened, nodata values
MANIFEST_NAME = "manifest.json"
CACHE_DIR_NAME = ".rsgui"

# Columnar, so that 27,000 entries load in milliseconds: paths and the few distinct header
# "kinds" (shape, dtype, CRS, band descriptions, problem...) in JSON; sizes, mtimes, kind ids and
# georeference numbers in an npz beside it. A shared random token ties the two files together.

GEO_COLS = 16  # left bottom right top, centre lon lat, footprint ring (5 points) lon lat
GEO_FIELDS = ("bounds", "lonlat")


@dataclass
class Manifest:
    """Every scanned file with the header kind and georeference it had at (size, mtime_ns)."""

    paths: list[str]
    sizes: np.ndarray  # int64
    mtimes: np.ndarray  # int64 (ns)
    kind_ids: np.ndarray  # int64, index into kinds
    kinds: list[dict]  # header entry without its georeference numbers, or {"problem": ...}
    geo: np.ndarray  # (N, GEO_COLS) float64, NaN where unknown
    checks: np.ndarray | None = None  # int64 content check (rsgui.listing.content_check), 0: none

    def __post_init__(self):
        if self.checks is None:
            self.checks = np.zeros(len(self.paths), dtype=np.int64)

    def lookup(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}


def split_entry(entry: dict) -> tuple[dict, np.ndarray]:
    """(kind, geo row) of a header entry as :func:`rsgui.tiff_header.read_header` returns it,
    with ``lonlat`` added for a georeferenced tile."""
    kind = {k: v for k, v in entry.items() if k not in GEO_FIELDS and k != "check"}
    row = np.full(GEO_COLS, np.nan)
    if entry.get("bounds"):
        row[:4] = entry["bounds"]
        ll = entry.get("lonlat")
        if ll:
            row[4:6] = ll["center"]
            row[6:] = np.asarray(ll["ring"], dtype=np.float64).ravel()
    return kind, row


def archive_cache_path(root: Path) -> Path:
    """The manifest inside the archive (``ARCHIVE/.rsgui/manifest.json``)."""
    return root / CACHE_DIR_NAME / MANIFEST_NAME


def user_cache_path(root: Path) -> Path:
    """The manifest of a read-only archive, in the user cache."""
    return user_cache_dir(root) / MANIFEST_NAME


_DTYPES = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"}


def kind_ok(kind) -> bool:
    """Whether a cached header kind is one the scan could have written: a problem text, or a
    tile within the archive's limits (side at most ``MAX_TILE_SIDE``, at most ``MAX_BANDS``
    bands of a known type, a sane pixel offset). A cache claiming 30000x30000 tiles would
    otherwise make the first read allocate gigabytes."""
    from rsgui.tiff_header import MAX_BANDS, MAX_TILE_SIDE

    if not isinstance(kind, dict):
        return False
    if "problem" in kind:
        return isinstance(kind["problem"], str)
    ints = [kind.get(k) for k in ("count", "height", "width")]
    if not all(type(v) is int for v in ints):
        return False
    c, h, w = ints
    if not (1 <= c <= MAX_BANDS and 1 <= h <= MAX_TILE_SIDE and 1 <= w <= MAX_TILE_SIDE):
        return False
    if kind.get("dtype") not in _DTYPES:
        return False
    desc = kind.get("descriptions")
    if desc is not None and (not isinstance(desc, list) or len(desc) != c):
        return False
    nodata = kind.get("nodata")
    if nodata is not None and (type(nodata) not in (int, float) or nodata != nodata):
        return False
    raw = kind.get("raw")
    if raw is not None:
        if not isinstance(raw, dict) or type(raw.get("offset")) is not int or raw["offset"] < 0:
            return False
        if raw.get("byteorder") not in ("<", ">") or raw.get("planar") not in (1, 2):
            return False
    return True


def _load(path: Path) -> Manifest | None:
    try:
        meta = read_json(path, what="manifest")
        if not isinstance(meta, dict) or meta.get("version") != MANIFEST_VERSION:
            return None
        z = load_npz(path.with_suffix(".npz"), what="manifest array file")  # sizes checked
        if str(z["token"]) != meta["token"]:
            return None  # the two halves come from different writes
        arrays = {k: z[k] for k in ("sizes", "mtimes", "kind_ids", "geo", "checks")}
        if not isinstance(meta["kinds"], list) or not all(map(kind_ok, meta["kinds"])):
            log.info("%s: a header kind outside the tile limits; the cache is rebuilt", path)
            return None
        m = Manifest(meta["paths"], kinds=meta["kinds"], **arrays)
        n = len(m.paths)
        if not all(len(a) == n for a in arrays.values()) or m.geo.shape[1:] != (GEO_COLS,):
            return None
        if n and (m.kind_ids.min() < 0 or m.kind_ids.max() >= len(m.kinds)):
            return None
        return m
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load_manifests(root: Path) -> list[tuple[Path, Manifest]]:
    """Every valid cache with its path (archive copy first, then the user copy). Both are
    consulted because a read-only archive may hold a stale copy."""
    found = []
    for path in (archive_cache_path(root), user_cache_path(root)):
        m = _load(path)
        if m is not None:
            found.append((path, m))
    return found


def _save(path: Path, m: Manifest) -> None:
    token = uuid.uuid4().hex
    with atomic_path(path.with_suffix(".npz")) as tmp:
        os.chmod(tmp, 0o644)  # others opening a shared archive may use the cache too
        with open(tmp, "wb") as f:
            np.savez(
                f, token=np.array(token), sizes=m.sizes, mtimes=m.mtimes, kind_ids=m.kind_ids,
                geo=m.geo, checks=m.checks,
            )  # fmt: skip
    meta = {"version": MANIFEST_VERSION, "token": token, "paths": m.paths, "kinds": m.kinds}
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o644)
        tmp.write_text(json.dumps(meta, separators=(",", ":")), encoding="utf-8")


def archive_writable(root: Path) -> bool:
    """Whether the cache may go into the archive. A folder without any write permission bit is
    treated as read-only even for root, who could write there anyway: it was shared that way."""
    try:
        mode = os.stat(root).st_mode
    except OSError:
        return False
    return bool(mode & 0o222) and os.access(root, os.W_OK)


def save_manifest(root: Path, m: Manifest) -> Path | None:
    """Write the cache atomically, in the archive when possible, else in the user cache."""
    for path in (archive_cache_path(root), user_cache_path(root)):
        if path == archive_cache_path(root) and not archive_writable(root):
            continue
        try:
            _save(path, m)
        except OSError as e:
            log.info("cannot write manifest %s: %s", path, e)
            continue
        return path
    return None


def drop_entries(root: Path, rels: list[str]) -> None:
    """Remove files from every cache of ``root`` (a tile whose pixels could not be read: its
    header is read again, and the file reported, next time instead of failing again)."""
    gone = set(rels)
    for path, m in load_manifests(root):
        keep = [i for i, p in enumerate(m.paths) if p not in gone]
        if len(keep) == len(m.paths):
            continue
        k = np.asarray(keep, dtype=np.int64)
        trimmed = Manifest([m.paths[i] for i in keep], m.sizes[k], m.mtimes[k], m.kind_ids[k],
                           m.kinds, m.geo[k], m.checks[k])  # fmt: skip
        try:
            _save(path, trimmed)
        except OSError as e:
            log.info("cannot rewrite manifest %s: %s", path, e)


# ---------------------------------------------------------------------------- side caches
def side_cache_paths(root: Path, name: str) -> list[Path]:
    """Where a cache ``name`` (``scenes-t64-s64``) of ``root`` may live: in the archive, then
    in the user cache for a read-only archive. JSON beside an npz of the same stem."""
    return [root / CACHE_DIR_NAME / f"{name}.json", user_cache_dir(root) / f"{name}.json"]


def load_side_cache(root: Path, name: str, version: int) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of the first valid cache ``name`` of ``root``, or ({}, {}): a scene's grid
    and nodata screening, so a second open lists, stats and loads instead of reading pixels."""
    for path in side_cache_paths(root, name):
        try:
            meta = read_json(path, what="cache")
            if not isinstance(meta, dict) or meta.get("version") != version:
                continue
            arrays = load_npz(path.with_suffix(".npz"), what="cache array file")
            if str(arrays.pop("token", "")) != meta.get("token"):
                continue  # the two halves come from different writes
            return meta, arrays
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return {}, {}


def save_side_cache(
    root: Path, name: str, version: int, meta: dict, arrays: dict[str, np.ndarray]
) -> Path | None:
    """Write cache ``name`` atomically (npz first, then the JSON that names its token), in the
    archive when writable, else in the user cache. Returns where, or None."""
    token = uuid.uuid4().hex
    meta = {**meta, "version": version, "token": token}
    for path in side_cache_paths(root, name):
        if path.parent.parent == root and not archive_writable(root):
            continue
        try:
            with atomic_path(path.with_suffix(".npz")) as tmp:
                os.chmod(tmp, 0o644)
                with open(tmp, "wb") as f:
                    np.savez(f, token=np.array(token), **arrays)
            with atomic_path(path) as tmp:
                os.chmod(tmp, 0o644)
                tmp.write_text(json.dumps(meta, separators=(",", ":")), encoding="utf-8")
        except OSError as e:
            log.info("cannot write cache %s: %s", path, e)
            continue
        return path
    return None
