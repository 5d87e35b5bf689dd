"""Listing the raster files of an archive folder, with the (size, mtime) that key the cache.

One ``os.scandir`` walk: 27,000 files are listed and stat'ed in a fraction of a second, which is
what a warm open costs besides loading the manifest.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

RASTER_EXTENSIONS: tuple[str, ...] = (".tif", ".tiff", ".jpg", ".jpeg", ".png")

FileStat = tuple[str, int, int, bool]  # relative POSIX path, size, mtime_ns, is_dir


def list_files(
    root: Path,
    extensions: Iterable[str] = RASTER_EXTENSIONS,
    skipped: list[tuple[str, str]] | None = None,
) -> list[FileStat]:
    """Every regular file (and folder named like one) below ``root`` whose suffix is in
    ``extensions``, sorted by relative path. Hidden names (``.rsgui``, temp files) are skipped.
    A file that cannot be stat'ed is listed with size and mtime -1, so it is reported rather
    than lost.

    Links to folders are followed only when they lead to a folder inside ``root`` that the walk
    has not seen yet (by device and inode): a link to ``/`` or a link back up (``up -> ..``) is
    not walked. Those, and raster-named entries that are not regular files (a FIFO, a device, a
    socket: opening one could block for ever), are left out and reported in ``skipped`` as
    ``(relative path, reason)``."""
    exts = {e.lower() for e in extensions}
    out: list[FileStat] = []
    root_real = os.path.realpath(root)
    try:
        st_root = os.stat(root)
        seen = {(st_root.st_dev, st_root.st_ino)}
    except OSError:
        seen = set()
    report = skipped.append if skipped is not None else (lambda item: None)
    stack = [("", str(root))]
    links: list[tuple[str, str, tuple[int, int]]] = []  # walked after every real folder
    while stack or links:
        if not stack:
            rel, path, key = links.pop(0)
            if key in seen:
                report((rel, "link to a folder listed already (a link loop or a second "
                             "way to it); not walked again"))  # fmt: skip
                continue
            seen.add(key)
            stack.append((rel + "/", path))
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
                rel = prefix + name
                try:
                    if entry.is_dir():
                        if is_raster_name:
                            out.append((rel, 0, 0, True))
                            continue
                        st = entry.stat()
                        key = (st.st_dev, st.st_ino)
                        if entry.is_symlink():
                            target = os.path.realpath(entry.path)
                            if os.path.commonpath([root_real, target]) != root_real:
                                report((rel, f"link to a folder outside the archive ({target}); "
                                             "not followed"))  # fmt: skip
                            else:
                                links.append((rel, entry.path, key))
                            continue
                        if key in seen:  # a bind mount or a hard-linked folder
                            report((rel, "a folder listed already; not walked again"))
                            continue
                        seen.add(key)
                        stack.append((rel + "/", entry.path))
                        continue
                    if not is_raster_name:
                        continue
                    st = entry.stat()
                except OSError:
                    out.append((rel, -1, -1, False))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    report((rel, f"not a regular file ({_file_type(st.st_mode)})"))
                    continue
                out.append((rel, st.st_size, st.st_mtime_ns, False))
    out.sort()
    return out


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


CHECK_HEAD = 4096  # bytes hashed from the start (a TIFF's header and first IFD sit there)
CHECK_TAIL = 1024  # and from the end (where some writers put the IFD)


def content_check(f_or_path, size: int | None = None) -> int:
    """A cheap fingerprint of a file's content: a 63-bit hash of its size, its first 4 KB and
    its last 1 KB (two reads). It tells a file rewritten with the same size and mtime but another
    layout (header, strip offsets) from the one that was scanned; 0 means unknown."""
    own = not hasattr(f_or_path, "fileno")
    fd = os.open(f_or_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)) if own else None
    try:
        fileno = fd if own else f_or_path.fileno()
        if size is None:
            st = os.fstat(fileno)
            if not stat.S_ISREG(st.st_mode):
                return 0
            size = st.st_size
        head = os.pread(fileno, CHECK_HEAD, 0)
        tail = os.pread(fileno, CHECK_TAIL, max(CHECK_HEAD, size - CHECK_TAIL))
        return check_of(size, head, tail if size > CHECK_HEAD else b"")
    finally:
        if fd is not None:
            os.close(fd)


def check_of(size: int, head: bytes, tail: bytes) -> int:
    """:func:`content_check` from bytes already read: the first ``CHECK_HEAD`` bytes and, for a
    larger file, the ``CHECK_TAIL`` bytes ending at its end (not before ``CHECK_HEAD``)."""
    import hashlib

    h = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=8)
    h.update(head)
    h.update(tail)
    return (int.from_bytes(h.digest(), "little") >> 1) or 1


def check_of_buffer(size: int, buf: bytes) -> int:
    """:func:`content_check` of a file read whole into ``buf`` (``len(buf) == size``)."""
    tail = buf[max(CHECK_HEAD, size - CHECK_TAIL) : size] if size > CHECK_HEAD else b""
    return check_of(size, buf[:CHECK_HEAD], tail)
