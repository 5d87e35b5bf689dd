"""``rsgui --screenshot DIR [--archive PATH]``: drive every panel offscreen and save PNGs.

Opens the window on the archive (default: the demo archive in the user data folder, created and
indexed when missing), prepares each panel as a user would (a composite, a query with results,
the other panels through their optional ``screenshot_demo()`` hook), waits for their workers with
a bounded event loop, and saves ``DIR/<panel>.png``. Settings go to a throw-away file so the
user's own settings are untouched.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from rsgui.app.workers import wait_until

log = logging.getLogger(__name__)
_T0 = time.perf_counter()


def _workers_idle(state) -> bool:
    from superqt.utils import WorkerBase

    return not state.tasks.active and not WorkerBase._worker_set


def _settle(window, timeout_s: float = 60.0) -> bool:
    """Wait for tasks, other workers and pending thumbnails (bounded)."""
    ok = wait_until(lambda: _workers_idle(window.state), timeout_s)
    cache = window.cache
    if cache is not None:
        wait_until(lambda: not cache.is_pending(), min(timeout_s, 15.0))
    wait_until(lambda: False, 0.25)  # let queued repaints land
    return ok


def _save(widget: QWidget, path: Path) -> Path:
    QApplication.processEvents()
    pix = widget.grab()
    if not pix.save(str(path)):
        raise OSError(f"{path}: cannot write the screenshot")
    log.info("screenshot %s (%dx%d)", path, pix.width(), pix.height())
    print(
        f"rsgui: wrote {path} ({pix.width()}x{pix.height()}) at {time.perf_counter() - _T0:.1f} s",
        flush=True,
    )
    return path


def _quiet_offscreen() -> None:
    """Drop the offscreen platform's harmless 'propagateSizeHints' notices from the output."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_mode, _context, message: str) -> None:
        if "propagateSizeHints" not in message:
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def run_screenshots(outdir: str | Path, archive: str | Path | None = None) -> int:
    from rsgui.app.main_window import MainWindow, demo_job
    from rsgui.app.settings import Settings, user_data_dir

    if QApplication.platformName() == "offscreen":
        _quiet_offscreen()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="rsgui-shot-")
    settings = Settings(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings=settings)
    window.resize(1500, 950)
    window.show()
    t0 = time.perf_counter()
    _save(window, out / "welcome.png")

    state = window.state
    if archive is None:
        result = demo_job(user_data_dir() / "demo-archive")
        window._demo_ready(result)
    else:
        from rsgui.app.main_window import open_archive_job

        window._archive_opened(open_archive_job(archive))
        if not state.indexes:
            query = window.panel("Search")
            query.build_spectral_index()
            _settle(window, 300)
    _settle(window)

    # Archive browser: first tile selected, details visible
    window.show_tab("Archive")
    browser = window.panel("Archive")
    browser.screenshot_demo()
    _settle(window)
    _save(browser, out / "browser.png")

    # Viewer: false-colour composite of a tile, and NDVI
    viewer = window.panel("Viewer")
    if state.selected is None and state.archive is not None and len(state.archive):
        state.select_tile(state.tile_ref(0))
    viewer.apply_preset("False-colour infrared")
    viewer.redraw()
    if viewer.raw is not None:  # as if the pointer rested on the tile's centre
        h, w = viewer.raw.shape[1:]
        viewer.readout.setText(viewer.readout_at(h // 2, w // 2))
    _settle(window, 5)
    _save(viewer, out / "viewer.png")
    if viewer.apply_preset("NDVI"):
        viewer.redraw()
        _settle(window, 5)
        _save(viewer, out / "viewer-ndvi.png")
    viewer.apply_preset("True colour")

    # Search: a query with results
    window.show_tab("Search")
    query = window.panel("Search")
    if state.query is None:
        query.screenshot_demo()
    elif state.results is None:
        query.search()
    _settle(window)
    query.step_result(1)
    _settle(window, 5)
    _save(query, out / "query.png")
    _save(window, out / "window.png")

    # The other panels (written against AppState), through their optional hook
    from rsgui.app import main_window

    for title, module, _cls in main_window.EXTRA_PANELS:
        name = module.rsplit(".", 1)[-1]  # evaluation.png, training.png, samples.png
        window.show_tab(title)
        panel = window.panel(title)
        hook = getattr(panel, "screenshot_demo", None)
        if callable(hook):
            try:
                hook()
            except Exception:
                log.exception("screenshot_demo of %s failed", title)
                print(f"rsgui: screenshot_demo of {title} failed (see log)", flush=True)
        if not _settle(window, 240):
            print(f"rsgui: {title}: workers still running after the wait; saving as is", flush=True)
        _save(panel, out / f"{name}.png")

    print(f"rsgui: screenshots done in {time.perf_counter() - t0:.1f} s", flush=True)
    state.tasks.cancel_all()
    window.close()
    return 0
