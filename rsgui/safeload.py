"""Reading ``.npz`` and JSON files whose sizes are checked before anything is allocated.

``numpy.load`` trusts each member's header: a 1 kB file whose ``.npy`` header claims a
(100000000000, 8) array makes it allocate 6.4 TB before it notices the data is missing. Here each
member's header is read first (numpy's format module reads the shape and dtype without the data),
and a member is loaded only when the bytes it claims fit inside what the zip member holds (a
stored member's size is the file's own; a compressed one can expand at most about 1,032 times,
deflate's limit) and within ``max_bytes`` overall. Pickled (object) arrays are refused. Every
refusal is one line naming the file, raised as the caller's error type. JSON settings files
are read only up to a size limit, and nesting too deep for the parser is a refusal, not a crash.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than this
DEFAULT_MAX_BYTES = 8 << 30  # no index, cache or manifest of ours comes near 8 GiB
JSON_MAX_BYTES = 64 << 20  # settings, sidecars and manifests stay far below 64 MiB


def member_headers(z: zipfile.ZipFile) -> dict[str, tuple[tuple[int, ...], np.dtype, int]]:
    """``{name: (shape, dtype, bytes claimed)}`` of every ``.npy`` member, data left unread.
    ValueError (naming the member) for a member that is not a plain numeric array."""
    out = {}
    for info in z.infolist():
        if not info.filename.endswith(".npy"):
            continue
        name = info.filename[:-4]
        with z.open(info) as f:
            version = npformat.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = npformat.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _fortran, dtype = npformat.read_array_header_2_0(f)
            else:
                raise ValueError(f"member {name!r}: unsupported .npy version {version}")
        if dtype.hasobject:
            raise ValueError(f"member {name!r} holds Python objects (pickled data)")
        if not all(isinstance(s, int) and s >= 0 for s in shape):
            raise ValueError(f"member {name!r}: invalid shape {shape}")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        room = info.file_size
        if info.compress_type == zipfile.ZIP_STORED:
            room = min(room, info.compress_size)
        else:
            room = min(room, info.compress_size * DEFLATE_MAX_RATIO)
        if nbytes > room:
            raise ValueError(
                f"member {name!r} claims a {'x'.join(map(str, shape)) or 'scalar'} {dtype} "
                f"array ({nbytes:,} bytes) but holds at most {room:,} bytes"
            )
        out[name] = (tuple(shape), dtype, nbytes)
    return out


def check_npz(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """ValueError unless every member of ``path`` fits what the file holds (headers only);
    for caches that are then read by code that cannot import this module."""
    with zipfile.ZipFile(path) as z:
        total = sum(n for _s, _d, n in member_headers(z).values())
    if total > max_bytes:
        raise ValueError(f"{path}: its arrays claim {total:,} bytes, more than {max_bytes:,}")


def load_npz(
    path: str | os.PathLike,
    error: type[Exception] = ValueError,
    max_bytes: int = DEFAULT_MAX_BYTES,
    what: str = "array file",
) -> dict[str, np.ndarray]:
    """Every array of ``path`` after checking the sizes its members claim; ``error(message)``
    naming the file on any problem (missing, not a zip, damaged, oversized, pickled)."""
    p = Path(path)
    try:
        return _load(p, max_bytes, what)
    except _Refused as exc:
        raise error(f"{p}: {exc}") from None
    except FileNotFoundError:
        raise error(f"{p}: {what} is missing") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()
        first = text[0] if text else type(exc).__name__
        raise error(f"{p}: damaged or truncated {what} ({first})") from None


class _Refused(Exception):
    pass


def _load(p: Path, max_bytes: int, what: str) -> dict[str, np.ndarray]:
    with open(p, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise _Refused(f"not an {what} (expected a .npz archive)")
    with zipfile.ZipFile(p) as z:
        try:
            heads = member_headers(z)
        except ValueError as exc:
            raise _Refused(str(exc)) from None
        total = sum(n for _s, _d, n in heads.values())
        if total > max_bytes:
            raise _Refused(f"its arrays claim {total:,} bytes, more than {max_bytes:,}")
        out = {}
        for name in heads:
            with z.open(name + ".npy") as f:
                out[name] = npformat.read_array(f, allow_pickle=False)
        return out


def read_json(
    path: str | os.PathLike,
    error: type[Exception] = ValueError,
    max_bytes: int = JSON_MAX_BYTES,
    what: str = "settings file",
):
    """The JSON value of ``path``, read only when the file is at most ``max_bytes``;
    ``error(message)`` naming the file otherwise. FileNotFoundError passes through (callers word
    a missing half themselves)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise error(f"{p}: {size:,} bytes, too large for a {what} (at most {max_bytes:,})")
            text = f.read(max_bytes + 1).decode("utf-8")
        return json.loads(text)
    except (FileNotFoundError, error):
        raise
    except RecursionError:
        raise error(f"{p}: not a readable {what} (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        text = str(exc).strip().splitlines()
        first = text[0] if text else type(exc).__name__
        raise error(f"{p}: not a readable {what} ({first})") from None
