"""``rsgui --screenshot DIR [--archive PATH]``: drive every panel offscreen and save PNGs.

Opens the window on the archive (default: the demo archive in the user data folder, created and
indexed when missing), prepares each panel as a user would (a composite, a query with results, a
short real run in the others: the ``*_demo`` functions below, which drive a panel through its
public methods), waits for their workers with a bounded event loop, and saves
``DIR/<panel>.png``. Settings go to a throw-away file so the user's own settings are untouched.
The panels themselves hold no demo code.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from rsgui.app.workers import wait_until
from rsgui.progress import drive

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
        window._demo_ready(drive(demo_job(user_data_dir() / "demo-archive")))
    else:
        from rsgui.app.main_window import open_archive_job

        window._archive_opened(drive(open_archive_job(archive)))
        if not state.indexes:
            query = window.panel("Search")
            query.build_spectral_index()
            _settle(window, 300)
    _settle(window)

    # Archive browser: first tile selected, details visible
    window.show_tab("Archive")
    browser = window.panel("Archive")
    if browser.model.rowCount():
        browser.select_row(0)
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
        query_demo(query)
    elif state.results is None:
        query.search()
    _settle(window)
    query.step_result(1)
    _settle(window, 5)
    _save(query, out / "query.png")
    _save(window, out / "window.png")
    map_shots(window, out)  # map.png, map-detail.png, map-area.png
    feedback_demo(query)  # several examples, a mark, a refined ranking waiting for Accept/Undo
    _settle(window)
    _save(query, out / "query-feedback.png")

    # The other panels (written against AppState), each with its demo when it has one
    from rsgui.app import main_window

    for title, module, _cls in main_window.EXTRA_PANELS:
        name = module.rsplit(".", 1)[-1]  # evaluation.png, training.png, samples.png
        window.show_tab(title)
        panel = window.panel(title)
        demo = DEMOS.get(type(panel).__name__)
        if demo is not None:
            try:
                demo(panel)
            except Exception:
                log.exception("the screenshot demo of %s failed", title)
                print(f"rsgui: the screenshot demo of {title} failed (see log)", flush=True)
        if not _settle(window, 240):
            print(f"rsgui: {title}: workers still running after the wait; saving as is", flush=True)
        _save(panel, out / f"{name}.png")

    print(f"rsgui: screenshots done in {time.perf_counter() - t0:.1f} s", flush=True)
    state.tasks.cancel_all()
    window.close()
    return 0


# --- what each panel shows in its screenshot ----------------------------------------------------
TINY_GAN = {"model": {"width": 0.125, "image_size": 32}}  # trains in seconds on a CPU


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run tiny demo networks on one CPU thread (restored afterwards): more only add contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def query_demo(panel) -> None:
    """A tile a third into the archive becomes the query (the panel then searches)."""
    state = panel.state
    archive = state.archive
    if archive is not None and state.query is None and len(archive):
        state.set_query(state.tile_ref(len(archive) // 3))


def map_shots(window, out: Path) -> None:
    """The map dock: the archive with the ranked results (``map.png``), zoomed onto the query's
    footprint (``map-detail.png``), and the window with the search limited to the map zoomed
    to the region around the query (``map-area.png``); the map is then put back as it was."""
    view, model = window.panel("Map"), getattr(window, "map_model", None)
    if model is None or not hasattr(view, "fit_archive"):
        return
    _settle(window, 10)
    view.fit_archive()
    wait_until(lambda: False, 0.3)
    _save(view, out / "map.png")
    if model.query_centre is not None:
        lon, lat = model.query_centre
        view.show_area((lon - 0.03, lat - 0.02, lon + 0.03, lat + 0.02))
        wait_until(lambda: False, 0.3)
        _save(view, out / "map-detail.png")
    state = window.state
    if model.query_centre is not None and state.results is not None:
        lon, lat = model.query_centre
        view.show_area((lon - 6, lat - 4, lon + 6, lat + 4), pad=0)
        wait_until(lambda: False, 0.3)
        view.area_check.setChecked(True)
        wait_until(lambda: state.results is not None and bool(state.results.filters), 10)
        _settle(window, 10)
        _save(window, out / "map-area.png")
        view.area_check.setChecked(False)
        wait_until(lambda: state.results is not None and not state.results.filters, 10)
        _settle(window, 10)
    view.fit_archive()


def feedback_demo(panel) -> None:
    """Two same-class results join the examples ("More like this"), the first other-class one is
    marked not wanted, then the ranking is refined by logistic regression (not yet accepted)."""
    state = panel.state
    res = state.results
    if res is None or not res.rows:
        return
    good = [i for i, r in enumerate(res.rows) if r.label == res.query_label][:2]
    if good:
        panel.mark_selected(1, [panel.model.index(i) for i in good])
        state.tasks.wait_idle(60)
    res = state.results
    bad = [i for i, r in enumerate(res.rows) if r.label != res.query_label][:1] if res else []
    if bad:
        panel.mark_selected(-1, [panel.model.index(i) for i in bad])
        state.tasks.wait_idle(60)
    panel.refine()
    state.tasks.wait_idle(60)


def evaluation_demo(panel) -> None:
    """Index the open archive with the spectral method at two code lengths (when it has no
    index yet) and compare them."""
    archive = panel.state.archive
    if archive is None or not archive.classes:
        return
    for bits in (16, 64):  # two code lengths, so that the views compare something
        if len(panel.index_paths()) >= 2:
            break
        path = _spectral_index(panel.state, archive, bits)
        if path not in panel.index_paths():
            panel.add_index(path)
    for p in panel.index_paths()[:4]:
        panel.set_checked(p, True)
    panel.evaluate()
    panel.wait(60.0)


def _spectral_index(state, archive, bits: int) -> Path:
    from rsgui.index_store import writable_index_dir
    from rsgui.services.training import train_job

    out = writable_index_dir(Path(archive.root)) / f"spectral-ms10-{bits}.npz"
    if not out.is_file():
        drive(train_job(archive, "spectral", out, bands="ms10", bits=bits))
    state.refresh_indexes()
    return out


def training_demo(panel) -> None:
    """A short real run on the open archive: a tiny conditional GAN, curves and checkpoint."""
    if panel.state.archive is None:
        return
    panel.method.setCurrentIndex(panel.method.findData("cdcgan"))
    panel.steps.setValue(80)
    panel.batch.setValue(8)
    panel.device.setCurrentIndex(panel.device.findData("cpu"))
    panel.extra_options = dict(TINY_GAN)
    with one_torch_thread():
        try:
            panel.start()
            panel.wait(90.0)
        finally:
            panel.extra_options = {}
    panel._redraw()
    if panel.checkpoint_names():
        panel.checkpoints.selectRow(0)


def samples_demo(panel) -> None:
    """Samples from a conditional GAN of the archive's model folder, or a tiny one trained here in
    a few seconds on the open archive (it is not meant to look real)."""
    model = panel.model.itemData(0) if panel.model.count() else None
    archive = panel.state.archive
    if model is None:
        if archive is None or not archive.classes:
            return
        from rsgui.app.panels.training import models_dir
        from rsgui.services.training import train_job

        out = models_dir(Path(archive.root)) / "cdcgan-rgb.safetensors"
        job = train_job(archive, "cdcgan", out, bands="rgb", steps=80, batch_size=8,
                        model=TINY_GAN["model"])  # fmt: skip
        with one_torch_thread():
            model = drive(job).path
        panel.refresh_models()
    panel.load_model(model)
    panel.wait()
    panel.count.setValue(16)
    panel.generate()
    panel.wait()
    panel.seed_b.setValue(7)
    panel.interpolate()
    panel.wait()
    panel.slider.setValue(panel.slider.maximum() // 2)


DEMOS: dict[str, Callable[[object], None]] = {
    "EvaluationPanel": evaluation_demo,
    "TrainingPanel": training_demo,
    "SamplesPanel": samples_demo,
}
