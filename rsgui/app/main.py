"""Entry point of the ``rsgui`` command.

``rsgui``                          open the application
``rsgui ARCHIVE``                  open it on an archive folder
``rsgui --screenshot DIR``         render every panel offscreen into DIR/*.png and exit
``rsgui --self-test``              check the installation and exit with its code

Start-up stays fast: torch, rasterio and the retrieval modules are imported only when used.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

_T0 = time.perf_counter()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rsgui", description="Search Sentinel-2 tile archives by content."
    )
    p.add_argument("archive_path", nargs="?", help="archive folder to open")
    p.add_argument("--archive", help="archive folder to open (same as the positional argument)")
    p.add_argument("--screenshot", metavar="DIR", help="save one PNG per panel into DIR, then exit")
    p.add_argument("--self-test", action="store_true", help="check the installation and exit")
    return p


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux), for the start-up time probe."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _xcb_libraries_missing() -> bool:
    """Before Qt loads its X11 plugin: name every missing system library at once, with the
    ``apt-get`` line that installs them (Qt would abort naming only the first). ``ldd`` runs
    only when the libraries changed since the last complete check."""
    from rsgui.app import system_libs

    if not system_libs.uses_xcb():
        return False
    missing = system_libs.missing_packages_cached()
    if missing:
        print(system_libs.message(missing), file=sys.stderr)
    return bool(missing)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.self_test:
        if importlib.util.find_spec("rsgui.app.selftest") is None:
            print("rsgui: the self-test is not available in this installation", file=sys.stderr)
            return 2
        from rsgui.app import selftest

        return int(selftest.run() or 0)

    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if os.environ.get("DISPLAY") and _xcb_libraries_missing():
        return 1
    from PySide6.QtWidgets import QApplication

    from rsgui.app.settings import APPLICATION, ORGANISATION

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("rsgui — tile retrieval")

    from rsgui.app.logging_setup import setup_logging

    setup_logging()
    archive = args.archive or args.archive_path
    if args.screenshot:
        from rsgui.app.screenshot import run_screenshots

        return run_screenshots(args.screenshot, archive)

    from rsgui.app.main_window import MainWindow

    window = MainWindow()
    window.show()
    if os.environ.get("RSGUI_STARTUP_PROBE"):
        from PySide6.QtCore import QTimer

        def _report() -> None:
            age = _process_age_s()
            print(
                f"rsgui: window shown {time.perf_counter() - _T0:.2f} s after import of main, "
                f"{age:.2f} s after process start"
                if age is not None
                else "rsgui: window shown",
                flush=True,
            )
            app.quit()

        QTimer.singleShot(0, _report)
    elif archive:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(0, lambda: window.open_archive(archive))
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
