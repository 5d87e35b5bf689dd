"""Main window: welcome page, opening an archive (dialog-free paths: recent list, drop), the demo
in one click, shortcuts, settings that persist, missing panels as placeholders, errors shown and
logged without closing. The worker pattern itself is tested in tests/test_jobs.py."""

from __future__ import annotations

import os
import sys

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QKeySequence
from PySide6.QtWidgets import QLabel

from rsgui.app import main_window as mw


def test_first_launch_shows_the_welcome_page(window):
    assert window.stack.currentWidget() is window.welcome
    assert window.tabs is None, "panels are built only when needed (fast start)"
    assert "Open folder" in window.welcome.open_button.text()
    assert "demo" in window.welcome.demo_button.text().lower()


@pytest.mark.parametrize(
    ("action", "keys"),
    [
        ("open_action", ["Ctrl+O"]),
        ("search_action", ["Ctrl+Return", "Ctrl+Enter"]),
        ("next_action", ["Alt+Right", "]"]),
        ("prev_action", ["Alt+Left", "["]),
    ],
)
def test_shortcuts(window, action, keys):
    assert getattr(window, action).shortcuts() == [QKeySequence(k) for k in keys]


def test_open_archive_remembers_it_and_shows_the_browser(qtbot, window, settings, demo_archive):
    window.open_archive(demo_archive)
    qtbot.waitUntil(lambda: window.state.archive is not None, timeout=20_000)
    assert window.stack.currentWidget() is window.tabs
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Archive"
    assert window.panel("Archive").visible_count() == len(window.state.archive)
    assert window.state.reference is not None and window.state.reference.pixels.shape[0] == 13
    assert settings.recent_archives()[0] == str(demo_archive)
    window.close()
    again = mw.MainWindow(settings=settings)
    qtbot.addWidget(again)
    buttons = [
        window_.text()
        for window_ in again.welcome.findChildren(type(again.welcome.open_button).__mro__[1])
    ]
    assert any(str(demo_archive) in t for t in buttons), (
        "the recent archive is offered on the next launch"
    )


def test_window_state_and_composite_persist(qtbot, window, settings):
    window.state.set_composite(
        window.state.composite.with_(stretch="minmax", preset=None, rgb=("B08", "B04", "B03"))
    )
    window.resize(640, 480)  # within the offscreen screen, which clamps restored geometry
    window.close()
    again = mw.MainWindow(settings=settings)
    qtbot.addWidget(again)
    assert again.state.composite.stretch == "minmax" and again.state.composite.rgb == (
        "B08",
        "B04",
        "B03",
    )
    assert again.size().width() == 640


def test_dropping_a_folder_opens_it(qtbot, window, demo_archive):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_archive))])
    event = QDropEvent(
        QPointF(5, 5),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.state.archive is not None, timeout=20_000)
    assert window.state.archive.root == demo_archive.resolve()


def test_opening_a_missing_folder_is_a_message(window, tmp_path):
    window.open_archive(tmp_path / "nowhere")
    assert "nowhere" in window.status_label.text() and "not a folder" in window.status_label.text()
    assert window.notifications.count() == 1 and window.notif_dock.isVisibleTo(window)


def test_demo_in_one_click_gives_a_search(qtbot, window):
    window.welcome.demo_button.click()
    qtbot.waitUntil(lambda: window.state.results is not None, timeout=90_000)
    assert len(window.state.archive) == 200
    from rsgui.app.panels.index_offer import offered_method

    assert window.state.index is not None and window.state.index.meta.method == offered_method()
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Search"
    assert window.panel("Search").result_count() == window.state.k


def test_missing_panel_becomes_a_placeholder(qtbot, window, demo_archive, monkeypatch):
    monkeypatch.setattr(
        mw, "EXTRA_PANELS", (("Ghost", "rsgui.app.panels.no_such_panel", "GhostPanel"),)
    )
    window.ensure_workspace()
    panel = window.panel("Ghost")
    assert isinstance(panel, QLabel) and "not available" in panel.text()


def test_uncaught_error_is_shown_and_logged_not_fatal(qtbot, window, tmp_path):
    from rsgui.app.logging_setup import log_file_path, setup_logging

    log = setup_logging()
    assert log == log_file_path() and str(tmp_path / "data") in str(log)
    try:
        raise ValueError("tiles/x.tif: broken header")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    qtbot.waitUntil(lambda: "broken header" in window.status_label.text(), timeout=2000)
    assert "x.tif" in window.status_label.text() and window.isVisible()
    for h in __import__("logging").getLogger().handlers:
        h.flush()
    text = log.read_text()
    assert "Traceback" in text and "tiles/x.tif: broken header" in text


def test_device_menu_lists_devices_and_remembers_the_choice(window, settings, monkeypatch):
    from rsgui.app import devices

    monkeypatch.setattr(
        devices,
        "list_devices",
        lambda: [devices.Device("cuda:0", "cuda:0 — test GPU"), devices.Device("cpu", "CPU")],
    )
    window._fill_device_menu()
    labels = [a.text() for a in window.device_menu.actions()]
    assert labels == ["cuda:0 — test GPU", "CPU"]
    window.device_menu.actions()[0].trigger()
    assert window.state.device == "cuda:0" and settings.device() == "cuda:0"
    assert [a.isChecked() for a in window.device_menu.actions()] == [True, False]


def test_screenshot_mode_saves_one_png_per_panel(
    qtbot, data_dirs, copy_archive, tmp_path, monkeypatch
):
    from PySide6.QtGui import QImage

    from rsgui.app.screenshot import run_screenshots

    monkeypatch.setattr(
        mw, "EXTRA_PANELS", (("Evaluation", "rsgui.app.panels.evaluation_missing", "X"),)
    )
    archive = copy_archive("shot")
    out = tmp_path / "shots"
    assert run_screenshots(out, archive) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    for expected in (
        "browser.png",
        "viewer.png",
        "viewer-ndvi.png",
        "query.png",
        "window.png",
        "welcome.png",
        "evaluation_missing.png",
    ):
        assert expected in names
    img = QImage(str(out / "query.png"))
    assert img.width() > 300 and img.height() > 300


def test_start_up_does_not_import_torch(tmp_path, demo_archive):
    """The window appears without torch; opening an archive and a spectral search need none."""
    import subprocess

    code = (
        "import sys, os\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from PySide6.QtCore import QSettings\n"
        "app = QApplication([])\n"
        "from rsgui.app.main_window import MainWindow, open_archive_job\n"
        "from rsgui.app.settings import Settings\n"
        f"s = Settings(QSettings({str(tmp_path / 's.ini')!r}, QSettings.Format.IniFormat))\n"
        "w = MainWindow(settings=s); w.show(); app.processEvents()\n"
        "shown = 'torch' in sys.modules\n"
        "from rsgui.progress import drive\n"
        f"w._archive_opened(drive(open_archive_job({str(demo_archive)!r}))); app.processEvents()\n"
        "print(shown, 'torch' in sys.modules)\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", RSGUI_DATA_DIR=str(tmp_path / "d"))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
