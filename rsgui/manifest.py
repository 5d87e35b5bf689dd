"""File listing, header reading and the manifest cache that makes re-opening an archive instant.

The first open reads every file's header (plain GeoTIFFs by a small parser, about 0.1 ms a file,
anything else with rasterio, about 1 ms); the result, problems included, is cached keyed by
(relative path, size, mtime_ns). A warm open then only lists the folder and stats the files. The
cache (``manifest.json`` + ``manifest.npz``) lives in ``ARCHIVE/.rsgui/`` when the archive is
writable, else in the user's cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import uuid
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rsgui.atomic import atomic_path

log = logging.getLogger(__name__)

MANIFEST_VERSION = 2
MANIFEST_NAME = "manifest.json"
CACHE_DIR_NAME = ".rsgui"
RASTER_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
MAX_TILE_SIDE = 1024  # larger rasters are scenes to be cut into tiles, not tiles
# RSGUI_FAST_TIFF=0 sends every file through GDAL (for comparison, or to rule the parser out)
FAST_TIFF = os.environ.get("RSGUI_FAST_TIFF", "1") != "0"

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
    exts = {e.lower() for e in extensions}
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
                if name[0] == ".":
                    continue
                dot = name.rfind(".")
                is_raster_name = dot > 0 and name[dot:].lower() in exts
                try:
                    if entry.is_dir():
                        if is_raster_name:
                            out.append((prefix + name, 0, 0, True))
                        else:
                            stack.append((prefix + name + "/", entry.path))
                        continue
                    if not is_raster_name:
                        continue
                    st = entry.stat()
                except OSError:
                    out.append((prefix + name, -1, -1, False))
                    continue
                out.append((prefix + name, st.st_size, st.st_mtime_ns, False))
    out.sort()
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


# ---------------------------------------------------------------------------- fast TIFF headers
# Most tile archives (EuroSAT included) are plain uncompressed GeoTIFFs with an EPSG code. Their
# header is parsed here in pure Python (~50 us instead of ~1 ms through GDAL), and their pixels can
# then be read with one seek and one read. Anything less plain returns None and goes to rasterio.

_TIFF_TYPES = {1: "B", 2: "s", 3: "H", 4: "I", 5: "II", 11: "f", 12: "d", 16: "Q"}
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 11: 4, 12: 8, 16: 8}
_DTYPES = {(1, 8): "uint8", (1, 16): "uint16", (1, 32): "uint32", (2, 16): "int16",
           (2, 32): "int32", (3, 32): "float32", (3, 64): "float64"}  # fmt: skip
_PLAIN_GEOKEYS = {1024, 1025, 1026, 2048, 2049, 2054, 3072, 3073, 3076}
_DESC_RE = re.compile(rb'<Item name="DESCRIPTION" sample="(\d+)" role="description">([^<]*)</Item>')


class _NotPlain(Exception):
    """The TIFF needs GDAL: compressed, tiled, BigTIFF, unusual CRS..."""


def _tiff_tags(f, file_size: int) -> tuple[str, dict[int, tuple]]:
    head = f.read(8)
    if head[:2] == b"II":
        bo = "<"
    elif head[:2] == b"MM":
        bo = ">"
    else:
        raise _NotPlain
    magic, ifd = struct.unpack(bo + "HI", head[2:8])
    if magic != 42 or ifd + 2 > file_size:
        raise _NotPlain
    buf = bytearray(head)

    def get(off: int, n: int) -> bytes:
        if off + n > file_size:
            raise _NotPlain
        if off + n > len(buf):
            f.seek(len(buf))
            buf.extend(f.read(max(off + n - len(buf), 4096)))
        return bytes(buf[off : off + n])

    (n,) = struct.unpack(bo + "H", get(ifd, 2))
    raw = get(ifd + 2, 12 * n)
    tags: dict[int, tuple] = {}
    for k in range(n):
        tag, typ, count = struct.unpack(bo + "HHI", raw[12 * k : 12 * k + 8])
        if typ not in _TIFF_TYPES:
            continue
        size = _TIFF_SIZES[typ] * count
        if size <= 4:
            data = raw[12 * k + 8 : 12 * k + 8 + size]
        else:
            (off,) = struct.unpack(bo + "I", raw[12 * k + 8 : 12 * k + 12])
            data = get(off, size)
        if typ == 2:
            tags[tag] = (data.rstrip(b"\0"),)
        else:
            fmt = _TIFF_TYPES[typ] * count if typ != 5 else "I" * 2 * count
            tags[tag] = struct.unpack(bo + fmt, data)
    return bo, tags


def _tiff_crs(tags: dict[int, tuple]) -> str | None:
    keys = tags.get(34735)
    if keys is None:
        return None
    if len(keys) < 4 or keys[0] != 1:
        raise _NotPlain
    geo = {}
    for i in range(keys[3]):
        key, loc, _count, value = keys[4 + 4 * i : 8 + 4 * i]
        if key not in _PLAIN_GEOKEYS:
            raise _NotPlain
        if loc == 0:
            geo[key] = value
    if geo.get(1025, 1) != 1 or geo.get(2054, 9102) != 9102 or geo.get(3076, 9001) != 9001:
        raise _NotPlain  # pixel-is-point or unusual units: let GDAL interpret them
    model = geo.get(1024)
    code = geo.get(3072) if model == 1 else geo.get(2048) if model == 2 else None
    if model == 2 and 3072 in geo:
        raise _NotPlain
    if code is None or not 1024 <= code < 32767:
        raise _NotPlain
    return f"EPSG:{code}"


def read_tiff_header(f, file_size: int) -> dict:
    """Header entry of a plain GeoTIFF (see above); raises _NotPlain otherwise."""
    bo, t = _tiff_tags(f, file_size)
    if t.get(254, (0,))[0] != 0 or 322 in t or 259 not in t or t[259][0] != 1:
        raise _NotPlain  # reduced-resolution first image, tiled, or compressed
    if t.get(262, (1,))[0] == 6:
        raise _NotPlain  # YCbCr: GDAL converts it to RGB
    w, h = t[256][0], t[257][0]
    spp = t.get(277, (1,))[0]
    bits = set(t.get(258, (1,)))
    fmts = set(t.get(339, (1,)))
    planar = t.get(284, (1,))[0]
    if len(bits) != 1 or len(fmts) != 1 or planar not in (1, 2):
        raise _NotPlain
    dtype = _DTYPES.get((fmts.pop(), bits.pop()))
    if dtype is None or 273 not in t or 279 not in t:
        raise _NotPlain
    if h > MAX_TILE_SIDE or w > MAX_TILE_SIDE:
        raise _NotPlain  # the GDAL path words the problem
    offsets, counts = t[273], t[279]
    end = max(o + c for o, c in zip(offsets, counts, strict=False))
    nbytes = w * h * spp * np.dtype(dtype).itemsize
    if len(offsets) != len(counts) or sum(counts) != nbytes:
        raise _NotPlain
    if end > file_size:
        return {
            "problem": f"corrupt or truncated raster (pixel data ends at byte {end}, "
            f"the file has {file_size})"
        }
    crs = _tiff_crs(t)
    bounds = None
    if crs is not None:
        scale, tie = t.get(33550), t.get(33922)
        if 34264 in t or not scale or not tie or len(tie) != 6 or scale[0] <= 0 or scale[1] <= 0:
            raise _NotPlain  # rotated, or a CRS without a simple transform
        left = tie[3] - tie[0] * scale[0]
        top = tie[4] + tie[1] * scale[1]
        bounds = [left, top - h * scale[1], left + w * scale[0], top]
    elif any(k in t for k in (33550, 33922, 34264)):
        raise _NotPlain
    desc = None
    if 42112 in t:
        found = {int(i): v.decode("utf-8", "replace") for i, v in _DESC_RE.findall(t[42112][0])}
        if any("&" in v for v in found.values()):
            raise _NotPlain  # GDAL escapes twice; let it undo that
        if found:
            desc = [found.get(i, "") for i in range(spp)]
    contiguous = all(offsets[k] + counts[k] == offsets[k + 1] for k in range(len(offsets) - 1))
    entry = {
        "driver": "GTiff",
        "count": spp,
        "height": h,
        "width": w,
        "dtype": dtype,
        "descriptions": desc,
        "crs": crs,
        "bounds": bounds,
    }
    if contiguous:
        entry["raw"] = {"offset": offsets[0], "byteorder": bo, "planar": planar}
    return entry


def read_raw_pixels(path: str, entry: dict, indexes: list[int]) -> np.ndarray:
    """(len(indexes), H, W) pixels of a plain GeoTIFF read with one seek (1-based indexes).
    May be a strided view; copy it (or normalise it into another array) before keeping it."""
    raw = entry["raw"]
    c, h, w = entry["count"], entry["height"], entry["width"]
    dt = np.dtype(entry["dtype"]).newbyteorder(raw["byteorder"])
    with open(path, "rb") as f:
        f.seek(raw["offset"])
        data = f.read(c * h * w * dt.itemsize)
    if len(data) != c * h * w * dt.itemsize:
        raise OSError("file is shorter than its header says (truncated?)")
    a = np.frombuffer(data, dtype=dt)
    sel = [i - 1 for i in indexes]
    if raw["planar"] == 1:
        out = a.reshape(h, w, c)[:, :, sel].transpose(2, 0, 1)
    else:
        out = a.reshape(c, h, w)[sel]
    return out if dt.isnative else out.astype(dt.newbyteorder("="))


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
            if (
                FAST_TIFF
                and magic[:4] in (b"II*\x00", b"MM\x00*")
                and p.lower().endswith((".tif", ".tiff"))
            ):
                f.seek(0)
                try:
                    return read_tiff_header(f, os.fstat(f.fileno()).st_size)
                except (_NotPlain, struct.error, KeyError, IndexError, ValueError):
                    pass
    except IsADirectoryError:
        return {"problem": "is a folder, not a raster file"}
    except PermissionError:
        return {"problem": "cannot be read: permission denied", "retry": True}
    except FileNotFoundError:
        return {"problem": "file not found", "retry": True}
    except OSError as e:
        return {"problem": f"cannot be read: {e.strerror or e}", "retry": True}
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
    """Headers of many files, in a small thread pool (file opens and GDAL release the GIL)."""
    import rasterio

    total = len(rels) if total is None else total
    workers = workers or min(8, 2 * (os.cpu_count() or 1))  # file opens wait on the disk
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


# ---------------------------------------------------------------------------- the cache
# Columnar, so that 27,000 entries load in milliseconds: paths and the few distinct header
# "kinds" (shape, dtype, CRS, band descriptions, problem...) in JSON; sizes, mtimes, kind ids and
# georeference numbers in an npz beside it. A shared random token ties the two files together.

GEO_COLS = 16  # left bottom right top, centre lon lat, footprint ring (5 points) lon lat
GEO_FIELDS = ("bounds", "lonlat")


@dataclass
class Manifest:
    paths: list[str]
    sizes: np.ndarray  # int64
    mtimes: np.ndarray  # int64 (ns)
    kind_ids: np.ndarray  # int64, index into kinds
    kinds: list[dict]  # header entry without its georeference numbers, or {"problem": ...}
    geo: np.ndarray  # (N, GEO_COLS) float64, NaN where unknown

    def lookup(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}


def split_entry(entry: dict) -> tuple[dict, np.ndarray]:
    """(kind, geo row) of a header entry as :func:`read_header` returns it."""
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
    return root / CACHE_DIR_NAME / MANIFEST_NAME


def user_cache_path(root: Path) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha1(str(root).encode("utf-8")).hexdigest()
    return Path(base) / "rsgui" / key / MANIFEST_NAME


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
