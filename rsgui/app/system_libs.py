"""Find the system libraries Qt's X11 platform plugin needs and name the packages that bring them.

PySide6's wheels ship Qt but not the xcb libraries of the desktop; on a fresh Debian or Ubuntu the
window then aborts with a message about ``xcb-cursor0``, and after that one is installed, about the
next library. ``ldd`` of the plugin lists every missing one at once, so the set-up script and the
launcher can print the one ``apt-get install`` line that fixes them all.

    python -m rsgui.app.system_libs            # report; exit 1 when something is missing
    python -m rsgui.app.system_libs --install  # as root with apt-get: install what is missing
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

# Debian package of each library whose package name does not follow from its file name.
PACKAGES = {
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def plugin_path() -> Path | None:
    """The xcb platform plugin of the installed PySide6, without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        p = Path(base) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if p.exists():
            return p
    return None


def missing_libraries(ldd_output: str) -> list[str]:
    """Library file names that ``ldd`` reports as not found, each once, in order."""
    seen: dict[str, None] = {}
    for name in _NOT_FOUND.findall(ldd_output):
        seen.setdefault(name, None)
    return list(seen)


def package_for(soname: str) -> str:
    """Debian's package name for a library file name (``libxcb-icccm.so.4`` -> ``libxcb-icccm4``).

    Debian names a library package after its soname: the base name, lower case, then the major
    version, with a hyphen between them when the base name ends in a digit."""
    if soname in PACKAGES:
        return PACKAGES[soname]
    m = re.match(r"^(lib.+?)\.so\.(\d+)", soname)
    if not m:
        return soname
    base, major = m.group(1).lower(), m.group(2)
    return f"{base}-{major}" if base[-1].isdigit() else f"{base}{major}"


def install_command(packages: list[str]) -> str:
    return "sudo apt-get install -y " + " ".join(packages)


def run_ldd(path: Path) -> str | None:
    import subprocess

    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        done = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout


def missing_packages() -> list[str]:
    """Packages to install so the xcb plugin loads; empty when nothing is missing or unknown."""
    path = plugin_path()
    out = run_ldd(path) if path is not None else None
    if not out:
        return []
    pkgs: dict[str, None] = {}
    for lib in missing_libraries(out):
        pkgs.setdefault(package_for(lib), None)
    return list(pkgs)


LD_CACHE = Path("/etc/ld.so.cache")  # rewritten by ldconfig whenever libraries come or go
CHECK_NAME = "xcb-libraries.json"


def _check_key(plugin: Path) -> list:
    """What the last complete check depended on: the plugin file, the loader's cache, the
    library path. Installing or removing a library package changes ``/etc/ld.so.cache``."""

    def stamp(p: Path) -> list:
        try:
            st = p.stat()
        except OSError:
            return [str(p), None]
        return [str(p), st.st_size, st.st_mtime_ns]

    return [stamp(plugin), stamp(LD_CACHE), os.environ.get("LD_LIBRARY_PATH", "")]


def missing_packages_cached(cache_dir: Path | None = None) -> list[str]:
    """:func:`missing_packages`, but ``ldd`` runs only when something it depends on changed
    since the last check that found nothing missing (a stat of two files instead of about
    50 ms at every start of the window)."""
    from rsgui.paths import user_cache_dir

    plugin = plugin_path()
    if plugin is None:
        return []
    record = (cache_dir or user_cache_dir()) / CHECK_NAME
    key = _check_key(plugin)
    try:
        if json.loads(record.read_text(encoding="utf-8")) == key:
            return []
    except (OSError, ValueError):
        pass
    packages = missing_packages()
    if not packages:
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(key), encoding="utf-8")
        except OSError:
            pass  # no cache folder: check again next time
    return packages


def uses_xcb(environ: dict | None = None) -> bool:
    """Whether Qt is about to load its X11 (xcb) platform plugin: a display is set and no other
    platform is asked for."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip()
    return bool(env.get("DISPLAY")) and platform in ("", "xcb")


def message(packages: list[str]) -> str:
    return (
        "rsgui: the window needs system libraries that are not installed ("
        + ", ".join(packages)
        + "). Install them with:\n  "
        + install_command(packages)
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    packages = missing_packages()
    if not packages:
        return 0
    apt = shutil.which("apt-get")
    if "--install" in args and apt and os.geteuid() == 0:
        print("rsgui: installing " + " ".join(packages), file=sys.stderr)
        import subprocess

        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        ok = subprocess.run([apt, "install", "-y", "-q", *packages], env=env).returncode == 0
        if not ok:  # package lists may be missing on a fresh machine
            subprocess.run([apt, "update", "-q"], env=env)
            ok = subprocess.run([apt, "install", "-y", "-q", *packages], env=env).returncode == 0
        if ok and not missing_packages():
            return 0
    print(message(packages), file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
