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
