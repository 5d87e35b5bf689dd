"""File listing, header reading and the manifest cache that makes re-opening an archive instant.

The first open reads every file's header with rasterio (about 1 ms a file); the result, problems
included, is kept as JSON keyed by (relative path, size, mtime_ns). A warm open then only lists the
folder and stats the files. The cache lives in ``ARCHIVE/.rsgui/manifest.json`` when the archive is
writable, else in the user's cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rsgui.atomic import atomic_write_text

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
CACHE_DIR_NAME = ".rsgui"
RASTER_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
MAX_TILE_SIDE = 1024  # larger rasters are scenes to be cut into tiles, not tiles

# GDAL would list the (possibly 3,000-file) folder on every open to look for sidecar files.
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_LOG_ERRORS": "OFF"}

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),
    (b"MM\x00+", "tiff"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG", "png"),
)
_EXT_KIND = {".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
_KIND_TEXT = {"tiff": "a TIFF", "jpeg": "a JPEG image", "png": "a PNG image"}

FileStat = tuple[str, int, int, bool]  # relative POSIX path, size, mtime_ns, is_dir


def list_files(root: Path, extensions: Iterable[str] = RASTER_EXTENSIONS) -> list[FileStat]:
    """Every file (and folder named like one) below ``root`` whose suffix is in ``extensions``,
    sorted by relative path. Hidden names (``.rsgui``, temp files) are skipped."""
    exts = tuple(e.lower() for e in extensions)
    out: list[FileStat] = []
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError as e:
            log.warning("cannot list %s: %s", folder, e)
            continue
        with it:
            for entry in it:
                name = entry.name
                if name.startswith("."):
                    continue
                rel = prefix + name
                is_raster_name = os.path.splitext(name)[1].lower() in exts
                try:
                    if entry.is_dir():
                        if is_raster_name:
                            out.append((rel, 0, 0, True))
                        else:
                            stack.append((rel + "/", entry.path))
                        continue
                    if not is_raster_name:
                        continue
                    st = entry.stat()
                except OSError:
                    out.append((rel, -1, -1, False))
                    continue
                out.append((rel, st.st_size, st.st_mtime_ns, False))
    out.sort(key=lambda f: f[0])
    return out


def parse_band_name(text: str | None) -> str | None:
    """``'B02'``, ``'B2'``, ``'b8a'``, ``'B8A (narrow NIR)'`` -> canonical ``'B02'`` / ``'B8A'``."""
    if not text:
        return None
    t = text.strip().upper()
    if not t.startswith("B"):
        return None
    t = t[1:]
    digits = ""
    for ch in t:
        if ch.isdigit():
            digits += ch
        else:
            break
    rest = t[len(digits) :]
    if not digits or int(digits) > 12 or int(digits) == 0:
        return None
    if rest.startswith("A"):
        if int(digits) != 8:
            return None
        rest = rest[1:]
        name = "B8A"
    else:
        name = f"B{int(digits):02d}"
    if rest and rest[0].isalnum():
        return None
    return name


def parse_descriptions(descriptions: Iterable[str | None] | None) -> tuple[str, ...] | None:
    """Band names from a file's band descriptions, or None unless every band has a distinct,
    recognisable Sentinel-2 name."""
    if not descriptions:
        return None
    names = tuple(parse_band_name(d) for d in descriptions)
    if any(n is None for n in names) or len(set(names)) != len(names):
        return None
    return names  # type: ignore[return-value]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def read_header(path: str | os.PathLike) -> dict:
    """The header of one raster file as a JSON-able dict, or ``{"problem": reason}``.

    Reads a few bytes to reject non-rasters cheaply, then the header with rasterio, then one
    pixel of the last strip so a truncated file is caught now rather than during indexing."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.windows import Window

    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            magic = f.read(8)
    except IsADirectoryError:
        return {"problem": "is a folder, not a raster file"}
    except PermissionError:
        return {"problem": "cannot be read: permission denied"}
    except FileNotFoundError:
        return {"problem": "file not found"}
    except OSError as e:
        return {"problem": f"cannot be read: {e.strerror or e}"}
    if not magic:
        return {"problem": "empty file (0 bytes)"}
    kind = next((k for m, k in _MAGIC if magic.startswith(m)), None)
    if kind is None:
        return {"problem": "not a raster file"}
    ext_kind = _EXT_KIND.get(os.path.splitext(p)[1].lower())
    if ext_kind and ext_kind != kind:
        return {
            "problem": f"not a {ext_kind.upper()} file: it is {_KIND_TEXT[kind]} with a wrong name"
        }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(p) as src:
                h, w, c = src.height, src.width, src.count
                if c == 0:
                    return {"problem": "has no bands"}
                if h > MAX_TILE_SIDE or w > MAX_TILE_SIDE:
                    return {
                        "problem": f"a scene, not a tile ({w}x{h} pixels; tiles are at most "
                        f"{MAX_TILE_SIDE}x{MAX_TILE_SIDE}): cut it into tiles first"
                    }
                crs = src.crs
                georef = crs is not None and not src.transform.is_identity
                desc = list(src.descriptions)
                entry = {
                    "driver": src.driver,
                    "count": c,
                    "height": h,
                    "width": w,
                    "dtype": src.dtypes[0],
                    "descriptions": desc if any(desc) else None,
                    "crs": crs.to_string() if georef else None,
                    "bounds": [float(v) for v in src.bounds] if georef else None,
                }
                src.read(c, window=Window(w - 1, h - 1, 1, 1))
    except Exception as e:  # rasterio/GDAL raise many types for broken files
        return {"problem": f"corrupt or truncated raster ({_first_line(e)})"}
    return entry


def read_headers(
    root: Path,
    rels: list[str],
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> list[dict]:
    """Headers of many files, in a small thread pool (GDAL releases the GIL while it reads)."""
    import rasterio

    total = len(rels) if total is None else total
    workers = workers or min(4, os.cpu_count() or 1)
    chunk = 64
    chunks = [rels[i : i + chunk] for i in range(0, len(rels), chunk)]

    def work(part: list[str]) -> list[dict]:
        with rasterio.Env(**GDAL_ENV):
            return [read_header(root / r) for r in part]

    out: list[dict] = []
    done = done_before
    if workers <= 1 or len(chunks) <= 1:
        results: Iterable[list[dict]] = map(work, chunks)
        for res in results:
            out += res
            done += len(res)
            if progress:
                progress(done, total)
        return out
    with ThreadPoolExecutor(workers) as pool:
        for res in pool.map(work, chunks):
            out += res
            done += len(res)
            if progress:
                progress(done, total)
    return out


def archive_cache_path(root: Path) -> Path:
    return root / CACHE_DIR_NAME / MANIFEST_NAME


def user_cache_path(root: Path) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha1(str(root).encode("utf-8")).hexdigest()
    return Path(base) / "rsgui" / key / MANIFEST_NAME


def load_manifests(root: Path) -> list[dict[str, list]]:
    """Every valid cache (archive copy first, then the user copy), each ``{rel: [size,
    mtime_ns, entry]}``. Both are consulted because a read-only archive may hold a stale copy."""
    found = []
    for path in (archive_cache_path(root), user_cache_path(root)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (
            isinstance(data, dict)
            and data.get("version") == MANIFEST_VERSION
            and isinstance(data.get("files"), dict)
        ):
            found.append(data["files"])
    return found


def save_manifest(root: Path, files: dict[str, list]) -> Path | None:
    """Write the cache atomically, in the archive when possible, else in the user cache."""
    text = json.dumps(
        {"version": MANIFEST_VERSION, "root": str(root), "files": files}, separators=(",", ":")
    )
    for path in (archive_cache_path(root), user_cache_path(root)):
        try:
            atomic_write_text(path, text)
        except OSError as e:
            log.info("cannot write manifest %s: %s", path, e)
            continue
        return path
    return None
