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

log = logging.getLogger(__name__)

MANIFEST_VERSION = 2
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

    def lookup(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}


def split_entry(entry: dict) -> tuple[dict, np.ndarray]:
    """(kind, geo row) of a header entry as :func:`rsgui.tiff_header.read_header` returns it,
    with ``lonlat`` added for a georeferenced tile."""
    kind = {k: v for k, v in entry.items() if k not in GEO_FIELDS}
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


def _load(path: Path) -> Manifest | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("version") != MANIFEST_VERSION:
            return None
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
            if str(z["token"]) != meta["token"]:
                return None  # the two halves come from different writes
            arrays = {k: z[k] for k in ("sizes", "mtimes", "kind_ids", "geo")}
        m = Manifest(meta["paths"], kinds=meta["kinds"], **arrays)
        n = len(m.paths)
        if not all(len(a) == n for a in arrays.values()) or m.geo.shape[1:] != (GEO_COLS,):
            return None
        if n and (m.kind_ids.min() < 0 or m.kind_ids.max() >= len(m.kinds)):
            return None
        return m
    except (OSError, ValueError, KeyError, TypeError):
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
                geo=m.geo,
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
