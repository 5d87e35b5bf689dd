"""Fixtures the application tests share: an opened state, private archive copies, shown panels,
isolated settings and data folders, and the tiny GAN settings that train in a second."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

TINY_GAN = {"model": {"width": 0.125, "image_size": 16}}  # a generator that trains in a second


@pytest.fixture(scope="session")
def tiny_gan() -> dict:
    """Network overrides for a conditional GAN small enough for a test."""
    return {"model": dict(TINY_GAN["model"])}


@pytest.fixture
def make_state(qtbot) -> Callable:
    """``make_state(root=None, reference=True)``: an AppState, with the archive at ``root`` open.
    ``reference``: also sample its pixels (as the window does) for archive-wide stretches."""
    from rsgui.app.state import AppState

    made = []

    def make(root: Path | None = None, reference: bool = True):
        state = AppState()
        made.append(state)
        if root is not None:
            if reference:
                from rsgui.app.main_window import open_archive_job
                from rsgui.progress import drive

                state.set_archive(*drive(open_archive_job(root)))
            else:
                from rsgui.archive import Archive

                state.set_archive(Archive.open(root))
        return state

    yield make
    for state in made:
        state.tasks.cancel_all()
        state.tasks.wait_idle(10)


@pytest.fixture
def state(make_state, demo_archive):
    """The shared demo archive, opened as the window opens it."""
    return make_state(demo_archive)


@pytest.fixture(scope="session")
def copy_archive(demo_archive, tmp_path_factory) -> Callable[[str], Path]:
    """``copy_archive(name)``: a private copy of the demo archive, for tests that write into it
    (models, indexes); its index folder is left out."""

    def copy(name: str) -> Path:
        root = tmp_path_factory.mktemp(name) / "archive"
        shutil.copytree(demo_archive, root, ignore=shutil.ignore_patterns(".rsgui"))
        return root

    return copy


@pytest.fixture
def show(qtbot) -> Callable:
    """``show(widget, size=None)``: hand the widget to qtbot (closed after the test), resize it
    and show it; returns it. A widget with a thumbnail cache has the cache stopped at the end."""
    shown = []

    def _show(widget, size: tuple[int, int] | None = None):
        qtbot.addWidget(widget)
        if size is not None:
            widget.resize(*size)
        widget.show()
        shown.append(widget)
        return widget

    yield _show
    for widget in shown:
        cache = getattr(widget, "cache", None)
        if cache is not None:
            cache.shutdown()


@pytest.fixture
def data_dirs(tmp_path, monkeypatch) -> Path:
    """The application's data and cache folders inside the test's temporary folder."""
    monkeypatch.setenv("RSGUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RSGUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # the window installs its own
    return tmp_path


@pytest.fixture
def settings(data_dirs):
    """Settings in a throw-away file (the user's own stay untouched)."""
    from PySide6.QtCore import QSettings

    from rsgui.app.settings import Settings

    ini = str(data_dirs / "settings.ini")
    return Settings(QSettings(ini, QSettings.Format.IniFormat))


@pytest.fixture
def window(qtbot, settings):
    """The main window on the welcome page; its jobs are stopped after the test."""
    from rsgui.app.main_window import MainWindow

    w = MainWindow(settings=settings)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.state.tasks.cancel_all()
    w.state.tasks.wait_idle(10)
    if w.cache is not None:
        w.cache.shutdown()


@pytest.fixture(scope="module")
def indexed_archive(tmp_path_factory):
    """A demo archive of this test module's own, with a 32-bit spectral index (the shared demo
    archive stays untouched)."""
    from rsgui.archive import Archive
    from rsgui.demo import make_demo_archive
    from rsgui.progress import drive
    from rsgui.services.indexing import spectral_index_job

    root = make_demo_archive(tmp_path_factory.mktemp("indexed") / "arch", n_per_class=5)
    drive(spectral_index_job(Archive.open(root), 32))
    return root
