"""The per-user cache folder: where caches of archives that cannot hold their own go.

One place decides it, so the manifest cache and the index files of a read-only archive land side
by side. ``RSGUI_CACHE_DIR`` overrides it (tests, the self-test); otherwise the platform's user
cache folder, which on Linux honours ``XDG_CACHE_HOME``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from platformdirs import user_cache_dir as platform_cache_dir

APP_NAME = "rsgui"


def user_cache_dir(archive: str | os.PathLike | None = None) -> Path:
    """The user cache folder of rsgui, or with ``archive`` (an absolute path) that archive's own
    folder inside it, named by a hash of the path so any folder name fits.

    Read from the environment on every call: a test or the self-test may point it elsewhere."""
    override = os.environ.get("RSGUI_CACHE_DIR")
    base = Path(override) if override else Path(platform_cache_dir(APP_NAME, appauthor=False))
    if archive is None:
        return base
    key = hashlib.sha1(str(archive).encode("utf-8")).hexdigest()
    return base / key


# -- names that come from files ------------------------------------------------------------------

_RESERVED = {".", "..", ""}


def safe_name(name: object, what: str = "name", source: str | os.PathLike | None = None) -> str:
    """``name`` when it can be one file or folder name (no separator, not ``.``/``..``, no NUL,
    not absolute, printable, at most 200 characters); else :class:`rsgui.errors.UnsafeNameError`
    naming ``source`` (the file the name came from) and what is wrong.

    Every name read from a file (class names of a model, band names, tile names, paths stored
    in an index) goes through this before it becomes part of a path."""
    from rsgui.errors import UnsafeNameError

    where = f"{source}: " if source is not None else ""
    if not isinstance(name, str):
        raise UnsafeNameError(f"{where}{what} {name!r} is not text")
    problem = None
    if name in _RESERVED:
        problem = "is not a file name"
    elif "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name):
        problem = "holds a path separator"
    elif "\x00" in name or not name.isprintable():
        problem = "holds control characters"
    elif len(name) > 200:
        problem = "is longer than 200 characters"
    elif name != name.strip() or name.endswith("."):
        problem = "starts or ends with a space or a dot"
    if problem is not None:
        raise UnsafeNameError(f"{where}{what} {name!r} {problem}; refused as part of a path")
    return name


def inside(root: str | os.PathLike, *parts: str, source: str | os.PathLike | None = None) -> Path:
    """``root/parts...`` after checking that it stays inside ``root`` (links resolved): a
    relative path read from a file (an index, a sidecar) never leads out of its folder.
    :class:`rsgui.errors.UnsafeNameError` names ``source`` and the path otherwise."""
    from rsgui.errors import UnsafeNameError

    base = Path(root)
    target = base.joinpath(*parts)
    where = f"{source}: " if source is not None else ""
    if any(Path(p).is_absolute() for p in parts) or any(
        seg == ".." for p in parts for seg in Path(p).parts
    ):
        raise UnsafeNameError(f"{where}path {'/'.join(parts)!r} leads outside {base}; refused")
    try:
        target.resolve().relative_to(base.resolve())
    except ValueError:
        raise UnsafeNameError(
            f"{where}path {'/'.join(parts)!r} leads outside {base} (through a link); refused"
        ) from None
    return target
