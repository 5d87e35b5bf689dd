"""Reading the header of a raster file, and the pixels of a plain GeoTIFF by offset.

Most tile archives (EuroSAT included) are plain uncompressed GeoTIFFs with an EPSG code. Their
header is parsed here in pure Python (about 50 us a file instead of about 1 ms through GDAL), and
their pixels are then read with one seek and one read. Anything less plain (compressed, tiled,
BigTIFF, an unusual CRS...) goes through rasterio. Plain JPEG and PNG headers are read directly
too (:mod:`rsgui.image_header`); palette PNGs, 12-bit JPEGs and the like go through rasterio. A
header that cannot serve as a tile comes back as ``{"problem": reason}``, so a scan reports it
instead of failing.
``RSGUI_FAST_TIFF=0`` sends every file through GDAL (for comparison, or to rule the parsers out).
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import numpy as np

from rsgui import image_header as ih
from rsgui.listing import check_of_buffer, content_check

FAST_TIFF = os.environ.get("RSGUI_FAST_TIFF", "1") != "0"
MAX_TILE_SIDE = 1024  # larger rasters are scenes to be cut into tiles, not tiles
MAX_BANDS = 1024  # hyperspectral tiles have a few hundred

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

Tags = dict[int, tuple]


def first_line(e: BaseException) -> str:
    """The first line of an error's message (GDAL's run over several), or its type name."""
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---------------------------------------------------------------------------- plain GeoTIFFs
_TIFF_TYPES = {1: "B", 2: "s", 3: "H", 4: "I", 5: "II", 11: "f", 12: "d", 16: "Q"}
_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 11: 4, 12: 8, 16: 8}
_DTYPES = {(1, 8): "uint8", (1, 16): "uint16", (1, 32): "uint32", (2, 16): "int16",
           (2, 32): "int32", (3, 32): "float32", (3, 64): "float64"}  # fmt: skip
_PLAIN_GEOKEYS = {1024, 1025, 1026, 2048, 2049, 2054, 3072, 3073, 3076}
_DESC_RE = re.compile(rb'<Item name="DESCRIPTION" sample="(\d+)" role="description">([^<]*)</Item>')


class NotPlain(Exception):
    """The TIFF needs GDAL: compressed, tiled, BigTIFF, unusual CRS..."""


def _ifd_tags(f: BinaryIO, file_size: int) -> tuple[str, Tags]:
    """(byte order, tag -> values) of the first image of a classic TIFF. ASCII values are one
    ``bytes`` without the trailing NULs; tags of unknown types are left out."""
    head = f.read(8)
    if head[:2] == b"II":
        bo = "<"
    elif head[:2] == b"MM":
        bo = ">"
    else:
        raise NotPlain
    magic, ifd = struct.unpack(bo + "HI", head[2:8])
    if magic != 42 or ifd + 2 > file_size:
        raise NotPlain
    buf = bytearray(head)

    def get(off: int, n: int) -> bytes:
        if off + n > file_size:
            raise NotPlain
        if off + n > len(buf):
            f.seek(len(buf))
            buf.extend(f.read(max(off + n - len(buf), 4096)))
        return bytes(buf[off : off + n])

    (n,) = struct.unpack(bo + "H", get(ifd, 2))
    raw = get(ifd + 2, 12 * n)
    tags: Tags = {}
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


def _crs(tags: Tags) -> str | None:
    """``EPSG:code`` from the GeoKey directory, None without one; NotPlain when the keys say
    more than a code (GDAL interprets those)."""
    keys = tags.get(34735)
    if keys is None:
        return None
    if len(keys) < 4 or keys[0] != 1:
        raise NotPlain
    geo = {}
    for i in range(keys[3]):
        key, loc, _count, value = keys[4 + 4 * i : 8 + 4 * i]
        if key not in _PLAIN_GEOKEYS:
            raise NotPlain
        if loc == 0:
            geo[key] = value
    if geo.get(1025, 1) != 1 or geo.get(2054, 9102) != 9102 or geo.get(3076, 9001) != 9001:
        raise NotPlain  # pixel-is-point or unusual units: let GDAL interpret them
    model = geo.get(1024)
    code = geo.get(3072) if model == 1 else geo.get(2048) if model == 2 else None
    if model == 2 and 3072 in geo:
        raise NotPlain
    if code is None or not 1024 <= code < 32767:
        raise NotPlain
    return f"EPSG:{code}"


def _bounds(tags: Tags, h: int, w: int) -> list[float]:
    """(left, bottom, right, top) from pixel scale and tie point; NotPlain when rotated."""
    scale, tie = tags.get(33550), tags.get(33922)
    if 34264 in tags or not scale or not tie or len(tie) != 6 or scale[0] <= 0 or scale[1] <= 0:
        raise NotPlain  # rotated, or a CRS without a simple transform
    left = tie[3] - tie[0] * scale[0]
    top = tie[4] + tie[1] * scale[1]
    return [left, top - h * scale[1], left + w * scale[0], top]


def _descriptions(tags: Tags, count: int) -> list[str] | None:
    """Band descriptions from GDAL's metadata tag, as GDAL reports them."""
    if 42112 not in tags:
        return None
    found = {int(i): v.decode("utf-8", "replace") for i, v in _DESC_RE.findall(tags[42112][0])}
    if any("&" in v for v in found.values()):
        raise NotPlain  # GDAL escapes twice; let it undo that
    return [found.get(i, "") for i in range(count)] if found else None


def _nodata(tags: Tags) -> float | None:
    """GDAL's nodata value (tag 42113, text), None without one or when it is NaN (NaN pixels
    are masked anyway); NotPlain when it is not a number."""
    if 42113 not in tags:
        return None
    try:
        v = float(tags[42113][0].decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise NotPlain from None
    return None if v != v else v


def plain_entry(bo: str, t: Tags, file_size: int) -> dict:
    """Header entry of a plain GeoTIFF from its first image's tags; NotPlain otherwise.

    The entry is what the GDAL path gives for the same file, plus ``raw`` (where the pixels
    start, byte order and interleave) when the strips are contiguous."""
    if t.get(254, (0,))[0] != 0 or 322 in t or 259 not in t or t[259][0] != 1:
        raise NotPlain  # reduced-resolution first image, tiled, or compressed
    if t.get(262, (1,))[0] == 6:
        raise NotPlain  # YCbCr: GDAL converts it to RGB
    w, h = t[256][0], t[257][0]
    spp = t.get(277, (1,))[0]
    bits = set(t.get(258, (1,)))
    fmts = set(t.get(339, (1,)))
    planar = t.get(284, (1,))[0]
    if len(bits) != 1 or len(fmts) != 1 or planar not in (1, 2):
        raise NotPlain
    dtype = _DTYPES.get((fmts.pop(), bits.pop()))
    if dtype is None or 273 not in t or 279 not in t:
        raise NotPlain
    if h > MAX_TILE_SIDE or w > MAX_TILE_SIDE or not 1 <= spp <= MAX_BANDS or not h or not w:
        raise NotPlain  # the GDAL path words the problem
    offsets, counts = t[273], t[279]
    end = max(o + c for o, c in zip(offsets, counts, strict=False))
    nbytes = w * h * spp * np.dtype(dtype).itemsize
    if len(offsets) != len(counts) or sum(counts) != nbytes:
        raise NotPlain
    if end > file_size:
        return {
            "problem": f"corrupt or truncated raster (pixel data ends at byte {end}, "
            f"the file has {file_size})"
        }
    crs = _crs(t)
    if crs is not None:
        bounds = _bounds(t, h, w)
    elif any(k in t for k in (33550, 33922, 34264)):
        raise NotPlain
    else:
        bounds = None
    entry = {
        "driver": "GTiff",
        "count": spp,
        "height": h,
        "width": w,
        "dtype": dtype,
        "descriptions": _descriptions(t, spp),
        "crs": crs,
        "bounds": bounds,
        "nodata": _nodata(t),
    }
    if all(offsets[k] + counts[k] == offsets[k + 1] for k in range(len(offsets) - 1)):
        entry["raw"] = {"offset": offsets[0], "byteorder": bo, "planar": planar}
    return entry


def read_tiff_header(f: BinaryIO, file_size: int) -> dict:
    """Header entry of a plain GeoTIFF open as ``f`` (at its start); NotPlain otherwise."""
    bo, tags = _ifd_tags(f, file_size)
    return plain_entry(bo, tags, file_size)


class LayoutChanged(Exception):
    """The file's content check differs from the one scanned: its cached offsets are stale."""


def read_raw_pixels(path: str, entry: dict, indexes: list[int], check: int = 0) -> np.ndarray:
    """(len(indexes), H, W) pixels of a plain GeoTIFF read with one seek (1-based indexes).
    May be a strided view; copy it (or normalise it into another array) before keeping it.
    With ``check`` (the file's content check when its header was read) the file is checked
    first: :class:`LayoutChanged` when it differs, so stale offsets are never trusted."""
    raw = entry["raw"]
    c, h, w = entry["count"], entry["height"], entry["width"]
    dt = np.dtype(entry["dtype"]).newbyteorder(raw["byteorder"])
    nbytes = c * h * w * dt.itemsize
    with open_regular(path) as f:
        if check:
            size = os.fstat(f.fileno()).st_size
            if size <= raw["offset"] + nbytes + 65536:  # a tile: one read for check and pixels
                buf = os.pread(f.fileno(), size, 0)
                if check_of_buffer(size, buf) != check:
                    raise LayoutChanged(path)
                data = memoryview(buf)[raw["offset"] : raw["offset"] + nbytes]  # no copy
            elif content_check(f, size) != check:
                raise LayoutChanged(path)
            else:
                f.seek(raw["offset"])
                data = f.read(nbytes)
        else:
            f.seek(raw["offset"])
            data = f.read(nbytes)
    if len(data) != nbytes:
        raise OSError("file is shorter than its header says (truncated?)")
    a = np.frombuffer(data, dtype=dt)
    sel = [i - 1 for i in indexes]
    if raw["planar"] == 1:
        out = a.reshape(h, w, c)[:, :, sel].transpose(2, 0, 1)
    else:
        out = a.reshape(c, h, w)[sel]
    return out if dt.isnative else out.astype(dt.newbyteorder("="))


# ---------------------------------------------------------------------------- any raster file
def quiet_georeference_warnings() -> None:
    """Silence rasterio's ``NotGeoreferencedWarning`` for the rest of the process.

    A tile without georeference is a fact that the archive report states ("CRS: none (N)"), not
    a warning for the terminal. One filter, added once and checked before adding:
    ``warnings.catch_warnings`` is not thread-safe, and from the header threads it let the
    warning through."""
    from rasterio.errors import NotGeoreferencedWarning

    for action, _msg, category, _mod, _line in warnings.filters:
        if category is NotGeoreferencedWarning and action == "ignore":
            return
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)


def _gdal_header(p: str) -> dict:
    """The header through rasterio, and the pixels screened (:func:`screen_pixels`): a
    truncated file is caught now rather than during indexing, and so is a mostly empty tile."""
    import rasterio

    quiet_georeference_warnings()
    try:
        with rasterio.open(p) as src:
            h, w, c = src.height, src.width, src.count
            if c == 0:
                return {"problem": "has no bands"}
            if c > MAX_BANDS:
                return {"problem": f"has {c} bands; tiles have at most {MAX_BANDS}"}
            if h > MAX_TILE_SIDE or w > MAX_TILE_SIDE:
                return {
                    "problem": f"a scene, not a tile ({w}x{h} pixels; tiles are at most "
                    f"{MAX_TILE_SIDE}x{MAX_TILE_SIDE}): open it as a scene archive of its own, "
                    "which cuts it into tiles"
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
                "nodata": _finite_or_none(src.nodata),
            }
            problem = screen_pixels(src.read(), entry["nodata"])  # also catches truncation
            if problem is not None:
                return {"problem": problem}
    except Exception as e:  # rasterio/GDAL raise many types for broken files
        return {"problem": f"corrupt or truncated raster ({first_line(e)})"}
    return entry


# ---------------------------------------------------------------------------- pixel screening
INVALID_MAX = 0.5  # a tile with more than this fraction of invalid pixels is left out
ALL_ZERO = "every pixel is 0 in every band: an empty tile (no data?), left out"
_NONZERO = re.compile(rb"[^\x00]")


def _finite_or_none(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def invalid_mask(raw: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """(H, W) True where any band of ``raw`` (C, H, W) is NaN, infinite or ``nodata``; None
    when no pixel is (integer tiles without a nodata value cost nothing here)."""
    bad = None
    # a NaN or infinity anywhere makes the sum non-finite: one cheap pass for clean tiles (an
    # overflowing sum of huge values only costs the exact check below)
    if raw.dtype.kind in "fc" and not np.isfinite(raw.sum()):
        finite = np.isfinite(raw).all(axis=0)
        if not finite.all():
            bad = ~finite
    if nodata is not None:
        nd = (raw == nodata).any(axis=0)
        if nd.any():
            bad = nd if bad is None else bad | nd
    return bad


def screen_pixels(raw: np.ndarray, nodata: float | None) -> str | None:
    """Why a tile's pixels rule it out, or None: more than half of them invalid (NaN, infinite
    or nodata in any band), or every value 0 (an empty tile, typically outside the swath)."""
    bad = invalid_mask(raw, nodata)
    if bad is not None:
        frac = float(bad.mean())
        if frac >= 1.0:
            return "every pixel is nodata, NaN or infinite: an empty tile, left out"
        if frac > INVALID_MAX:
            pct = min(99, math.ceil(100 * frac))
            return (
                f"{pct} % of its pixels are nodata, NaN or infinite: tiles more than half "
                "empty are left out"
            )
        return None
    if not raw.any():
        return ALL_ZERO
    return None


def _screened(entry: dict, f: BinaryIO, path: str) -> dict:
    """A plain GeoTIFF's entry, or ``{"problem": ...}`` when its pixels rule it out (read from
    the open file ``f`` in one read: the scan is cached, so each file pays this once; strips
    that do not follow each other are read through GDAL)."""
    if "problem" in entry:
        return entry
    if "raw" not in entry:
        import rasterio

        quiet_georeference_warnings()
        try:
            with rasterio.open(path) as src:
                problem = screen_pixels(src.read(), entry.get("nodata"))
        except Exception as e:  # rasterio/GDAL raise many types for broken files
            return {"problem": f"corrupt or truncated raster ({first_line(e)})"}
        return entry if problem is None else {"problem": problem}
    raw = entry["raw"]
    c, h, w = entry["count"], entry["height"], entry["width"]
    dt = np.dtype(entry["dtype"]).newbyteorder(raw["byteorder"])
    f.seek(raw["offset"])
    data = f.read(c * h * w * dt.itemsize)
    if len(data) != c * h * w * dt.itemsize:
        return {"problem": "corrupt or truncated raster (pixel data shorter than its header says)"}
    if dt.kind in "iu" and entry.get("nodata") is None:  # only an all-zero tile is ruled out:
        return entry if _NONZERO.search(data) else {"problem": ALL_ZERO}  # stops at a value
    a = np.frombuffer(data, dtype=dt)
    a = a.reshape(h, w, c).transpose(2, 0, 1) if raw["planar"] == 1 else a.reshape(c, h, w)
    problem = screen_pixels(a, entry.get("nodata"))
    return entry if problem is None else {"problem": problem}


def _wrong_kind(p: str, magic: bytes) -> str | None:
    """Why the first bytes rule the file out (empty, not a raster, misnamed), or None."""
    if not magic:
        return "empty file (0 bytes)"
    kind = next((k for m, k in _MAGIC if magic.startswith(m)), None)
    if kind is None:
        return "not a raster file"
    ext_kind = _EXT_KIND.get(os.path.splitext(p)[1].lower())
    if ext_kind and ext_kind != kind:
        return f"not a {ext_kind.upper()} file: it is {_KIND_TEXT[kind]} with a wrong name"
    return None


class NotRegularFile(OSError):
    """A FIFO, socket or device with a raster's name: reading it could block for ever."""


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``open(path, "rb")`` for a regular file only. Opened without blocking (a FIFO would wait
    for a writer for ever), then checked: :class:`NotRegularFile` for anything else."""
    f = open(path, "rb", opener=_nonblocking)
    try:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "Is a directory", os.fspath(path))
        if not stat.S_ISREG(mode):
            kind = (
                "a named pipe" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode)
                else "a device"
            )  # fmt: skip
            raise NotRegularFile(f"not a regular file ({kind})")
    except BaseException:
        f.close()
        raise
    return f


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _plain_image_kind(p: str, magic: bytes) -> str | None:
    """The image kind ("jpeg" or "png") when the first bytes and the file name agree, else None."""
    kind = (
        "jpeg" if magic.startswith(b"\xff\xd8\xff") else "png" if magic[:4] == b"\x89PNG" else None
    )
    return kind if kind and _EXT_KIND.get(os.path.splitext(p)[1].lower()) == kind else None


WHOLE_READ_MAX = 1 << 20  # files up to this size are read once, whole, when their header is read


def read_header(path: str | os.PathLike) -> dict:
    """The header of one raster file as a JSON-able dict, or ``{"problem": reason}``.

    Reads a few bytes to reject non-rasters cheaply, then a plain GeoTIFF's header directly,
    anything else with rasterio. ``"retry": True`` marks problems that a chmod may fix without
    touching the file, so a cached one is not trusted."""
    p = os.fspath(path)
    try:
        with open_regular(p) as f:
            size = os.fstat(f.fileno()).st_size
            if size <= WHOLE_READ_MAX:  # a tile: one read serves check, header and screening
                buf = f.read(size)
                size = len(buf)
                check = check_of_buffer(size, buf)
                f = io.BytesIO(buf)
            else:
                check = content_check(f, size)
            magic = f.read(8)
            if (
                FAST_TIFF
                and magic[:4] in (b"II*\x00", b"MM\x00*")
                and p.lower().endswith((".tif", ".tiff"))
            ):
                f.seek(0)
                try:
                    return _checked(_screened(read_tiff_header(f, size), f, p), check)
                except (NotPlain, struct.error, KeyError, IndexError, ValueError):
                    pass
            elif FAST_TIFF and (kind := _plain_image_kind(p, magic)):
                f.seek(0)
                try:
                    return _checked(ih.read_image_header(f, size, kind), check)
                except (ih.NeedsGdal, struct.error, IndexError, ValueError):
                    pass
    except IsADirectoryError:
        return {"problem": "is a folder, not a raster file"}
    except NotRegularFile as e:
        return {"problem": str(e)}
    except PermissionError:
        return {"problem": "cannot be read: permission denied", "retry": True}
    except FileNotFoundError:
        return {"problem": "file not found", "retry": True}
    except OSError as e:
        return {"problem": f"cannot be read: {e.strerror or e}", "retry": True}
    reason = _wrong_kind(p, magic)
    if reason is not None:
        return {"problem": reason}
    return _checked(_gdal_header(p), check)


def _checked(entry: dict, check: int) -> dict:
    """The entry with the file's :func:`rsgui.listing.content_check` as ``check`` (not part of
    the header kind: the manifest keeps it per file)."""
    if "problem" not in entry:
        entry["check"] = check
    return entry


def read_headers(
    root: Path,
    rels: list[str],
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    done_before: int = 0,
    total: int | None = None,
) -> list[dict]:
    """Headers of many files, in a small thread pool (file opens and GDAL release the GIL).
    ``progress(done, total)`` after each chunk, counting on from ``done_before``."""
    import rasterio

    total = len(rels) if total is None else total
    quiet_georeference_warnings()  # before the threads start: only this thread adds the filter
    workers = workers or min(8, 2 * (os.cpu_count() or 1))  # file opens wait on the disk
    chunk = 64
    chunks = [rels[i : i + chunk] for i in range(0, len(rels), chunk)]

    def work(part: list[str]) -> list[dict]:
        with rasterio.Env(**GDAL_ENV):
            return [read_header(root / r) for r in part]

    out: list[dict] = []
    done = done_before

    def collect(results: Iterable[list[dict]]) -> None:
        nonlocal done
        for res in results:
            out.extend(res)
            done += len(res)
            if progress:
                progress(done, total)

    if workers <= 1 or len(chunks) <= 1:
        collect(map(work, chunks))
    else:
        with ThreadPoolExecutor(workers) as pool:
            collect(pool.map(work, chunks))
    return out


# ---------------------------------------------------------------------------- raster size only
def raster_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) of a TIFF's first image from its first IFD (two small reads, no GDAL),
    or None when it is no TIFF or cannot be read. Deciding whether a file is a scene to cut into
    tiles must cost next to nothing beside a listing of 27,000 tiles."""
    try:
        with open_regular(path) as f:
            head = f.read(16)
            if head[:2] not in (b"II", b"MM"):
                return None
            bo = "<" if head[:2] == b"II" else ">"
            (magic,) = struct.unpack(bo + "H", head[2:4])
            if magic == 42:
                (off,) = struct.unpack(bo + "I", head[4:8])
                f.seek(off)
                (n,) = struct.unpack(bo + "H", f.read(2))
                size, fmt = 12, "HHI4s"
            elif magic == 43:
                (off,) = struct.unpack(bo + "Q", head[8:16])
                f.seek(off)
                (n,) = struct.unpack(bo + "Q", f.read(8))
                size, fmt = 20, "HHQ8s"
            else:
                return None
            data = f.read(size * min(n, 4096))
    except (OSError, struct.error):
        return None
    found: dict[int, int] = {}
    for k in range(len(data) // size):
        tag, typ, _count, value = struct.unpack(bo + fmt, data[k * size : (k + 1) * size])
        if tag in (256, 257):
            code = "H" if typ == 3 else "I" if typ == 4 else "Q" if typ == 16 else None
            if code is None:
                return None
            found[tag] = struct.unpack(bo + code, value[: struct.calcsize(code)])[0]
            if len(found) == 2:
                return found[256], found[257]
    return None
