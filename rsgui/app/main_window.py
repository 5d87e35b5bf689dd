"""The main window: a welcome page until an archive is open, then the workspace.

Workspace: tabs (Archive, Search, Evaluation, Training, GAN samples) with the composite viewer and
the map (:mod:`rsgui.app.panels.map_view`) in docks beside them and a notification area below.
Panels are created when first shown, so the window appears fast and a panel that cannot be loaded
becomes a message, not a failed start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rsgui.app.models import Composite, Notice, ReferenceSample, sample_archive
from rsgui.app.settings import Settings, user_data_dir
from rsgui.app.state import AppState
from rsgui.progress import Job, Progress

if TYPE_CHECKING:
    from rsgui.archive import Archive

log = logging.getLogger(__name__)
RESOURCES = Path(__file__).resolve().parents[2] / "resources"

# (tab title, module, class) of panels written against AppState; created lazily.
EXTRA_PANELS: tuple[tuple[str, str, str], ...] = (
    ("Evaluation", "rsgui.app.panels.evaluation", "EvaluationPanel"),
    ("Training", "rsgui.app.panels.training", "TrainingPanel"),
    ("GAN samples", "rsgui.app.panels.samples", "SamplesPanel"),
)


def icon(name: str) -> QIcon:
    path = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


# --- jobs ---------------------------------------------------------------------------------------
def open_archive_job(root: str | Path) -> Job[tuple[Archive, ReferenceSample]]:
    """The archive and a pixel sample of it (for archive-wide stretches)."""
    from rsgui.archive import Archive

    yield Progress(0, None, f"reading {Path(root).name}", stage="open")
    archive = Archive.open(root)
    return archive, (yield from sample_archive(archive))


def demo_job(dest: Path) -> Job[tuple[tuple[Archive, ReferenceSample], Path]]:
    """Create the demo archive (reused when present), open it, and index it with the strongest
    training-free method installed (``pretrained`` when its backbone is, else ``spectral``)."""
    from rsgui.app.panels.index_offer import index_offer_job, offered_method
    from rsgui.demo import make_demo_archive
    from rsgui.index_store import scan_indexes

    yield Progress(0, None, "writing demo tiles", stage="demo")
    root = make_demo_archive(dest)
    opened = yield from open_archive_job(root)
    method = offered_method()
    existing = [e for e in scan_indexes(opened[0].root) if e.method == method]
    if existing:
        return opened, existing[0].path
    yield Progress(0, None, f"building a {method} index", stage="index")
    built = yield from index_offer_job(opened[0], method, 64)
    return opened, built.path


# --- widgets ------------------------------------------------------------------------------------
class LazyPanel(QWidget):
    """Placeholder that builds the real panel the first time it is shown (or on :meth:`panel`)."""

    def __init__(self, factory: Callable[[], QWidget], title: str, parent=None) -> None:
        super().__init__(parent)
        self.factory = factory
        self.title = title
        self._panel: QWidget | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def panel(self) -> QWidget:
        if self._panel is None:
            try:
                self._panel = self.factory()
            except Exception as exc:  # a broken panel must not break the window
                log.exception("panel %s could not be created", self.title)
                self._panel = placeholder(f"The {self.title} panel could not be loaded: {exc}")
            self._layout.addWidget(self._panel)
        return self._panel

    def showEvent(self, event) -> None:
        self.panel()
        super().showEvent(event)


def placeholder(text: str) -> QWidget:
    w = QLabel(text)
    w.setObjectName("placeholder")
    w.setAlignment(Qt.AlignmentFlag.AlignCenter)
    w.setWordWrap(True)
    w.setMargin(30)
    return w


def import_panel(module: str, cls: str, title: str) -> type | None:
    import importlib

    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        if exc.name == module:  # the module is simply not there (yet)
            return None
        raise


class WelcomePage(QWidget):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        title = QLabel("Search Sentinel-2 tiles by what they show")
        f = QFont(title.font())
        f.setPointSize(f.pointSize() + 8)
        f.setBold(True)
        title.setFont(f)
        text = QLabel(
            "Open a folder of multispectral tiles (for example EuroSAT MS, one folder per class), "
            "or try the application on a small demo archive: it is created, indexed with the "
            "strongest training-free method installed and ready to search in well under a minute."
        )
        text.setWordWrap(True)
        text.setMaximumWidth(640)
        self.open_button = QPushButton(icon("folder"), "  Open folder…")
        self.demo_button = QPushButton(icon("demo"), "  Create demo archive and index it")
        for b in (self.open_button, self.demo_button):
            b.setMinimumHeight(44)
            b.setIconSize(QSize(22, 22))
        self.open_button.clicked.connect(window.choose_archive)
        self.demo_button.clicked.connect(window.create_demo)
        self.recent_label = QLabel("Recent archives")
        self.recent_label.setStyleSheet("font-weight: bold; margin-top: 16px;")
        self.recent = QVBoxLayout()
        self.window_ = window
        hint = QLabel("Tip: drag an archive folder onto this window.")
        hint.setStyleSheet("color: gray;")

        col = QVBoxLayout()
        col.addStretch(1)
        col.addWidget(title)
        col.addSpacing(8)
        col.addWidget(text)
        col.addSpacing(18)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.demo_button)
        row.addStretch(1)
        col.addLayout(row)
        col.addWidget(self.recent_label)
        col.addLayout(self.recent)
        col.addSpacing(12)
        col.addWidget(hint)
        col.addStretch(2)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(col, 4)
        outer.addStretch(1)
        self.refresh_recent()

    def refresh_recent(self) -> None:
        while self.recent.count():
            w = self.recent.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        items = self.window_.settings.recent_archives()
        self.recent_label.setVisible(bool(items))
        for path in items[:6]:
            b = QToolButton()
            b.setText(path)
            b.setAutoRaise(True)
            b.setCursor(Qt.CursorShape.PointingHandCursor)
            b.setStyleSheet("QToolButton { color: palette(link); text-decoration: underline; }")
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.clicked.connect(lambda _=False, p=path: self.window_.open_archive(p))
            self.recent.addWidget(b)


class MainWindow(QMainWindow):
    def __init__(self, state: AppState | None = None, settings: Settings | None = None) -> None:
        super().__init__()
        self.setObjectName("MainWindow")
        self.setWindowTitle("rsgui — tile retrieval")
        self.setWindowIcon(icon("app"))
        self.state = state or AppState(self)
        self.settings = settings or Settings()
        self.state.composite = Composite.from_dict(self.settings.composite())
        self.state.device = self.settings.device()
        self.state.scheduler = self.settings.scheduler()
        self.cache = None
        self.tabs: QTabWidget | None = None
        self.viewer_dock: QDockWidget | None = None
        self.map_dock: QDockWidget | None = None
        self.lazy: dict[str, LazyPanel] = {}
        self.setAcceptDrops(True)
        self.resize(1400, 900)

        self.stack = QStackedWidget()
        self.welcome = WelcomePage(self)
        self.stack.addWidget(self.welcome)
        self.setCentralWidget(self.stack)
        self._build_status_bar()
        self._build_notifications()
        self._build_menus()

        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.state.notified.connect(self._on_notice)
        self.state.tasks.activeChanged.connect(self._tasks_changed)
        self.state.compositeChanged.connect(lambda c: self.settings.set_composite(c.to_dict()))
        self.state.deviceChanged.connect(self.settings.set_device)
        from rsgui.app.logging_setup import install_excepthook

        install_excepthook(lambda text: self.state.notify(text, "error"))

    # --- construction ---------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QLabel("Ready")
        self.task_label = QLabel("")
        self.task_progress = QProgressBar()
        self.task_progress.setMaximumWidth(220)
        self.task_cancel = QPushButton("Cancel")
        self.task_cancel.clicked.connect(self.state.tasks.cancel_all)
        bar.addWidget(self.status_label, 1)
        for w in (self.task_label, self.task_progress, self.task_cancel):
            bar.addPermanentWidget(w)
            w.setVisible(False)
        self._watched_task = None

    def _build_notifications(self) -> None:
        self.notifications = QListWidget()
        self.notifications.setObjectName("notifications")
        self.notifications.setWordWrap(True)
        self.notif_dock = QDockWidget("Messages", self)
        self.notif_dock.setObjectName("MessagesDock")
        self.notif_dock.setWidget(self.notifications)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.notif_dock)
        self.notif_dock.setVisible(False)

    def _action(self, text: str, slot, shortcuts=(), icon_name: str | None = None) -> QAction:
        act = QAction(text, self)
        if icon_name:
            act.setIcon(icon(icon_name))
        if shortcuts:
            act.setShortcuts([QKeySequence(s) for s in shortcuts])
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file = mb.addMenu("&File")
        self.open_action = self._action(
            "&Open archive folder…", self.choose_archive, ["Ctrl+O"], "folder"
        )
        file.addAction(self.open_action)
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addAction(
            self._action("Create &demo archive and index it", self.create_demo, icon_name="demo")
        )
        file.addSeparator()
        file.addAction(self._action("&Quit", self.close, ["Ctrl+Q"]))
        search = mb.addMenu("&Search")
        self.search_action = self._action(
            "&Search", self.search, ["Ctrl+Return", "Ctrl+Enter"], "search"
        )
        search.addAction(self.search_action)
        search.addAction(
            self._action(
                "Choose &query file…",
                lambda: self._query_panel() and self._query_panel().choose_query_file(),
            )
        )
        search.addAction(
            self._action(
                "&Build spectral index",
                lambda: self._query_panel() and self._query_panel().build_spectral_index(),
            )
        )
        search.addSeparator()
        self.next_action = self._action(
            "&Next result", lambda: self.step_result(1), ["Alt+Right", "]"]
        )
        self.prev_action = self._action(
            "&Previous result", lambda: self.step_result(-1), ["Alt+Left", "["]
        )
        search.addAction(self.next_action)
        search.addAction(self.prev_action)
        view = mb.addMenu("&View")
        view.addAction(self.notif_dock.toggleViewAction())
        self.view_menu = view
        settings = mb.addMenu("Se&ttings")
        self.device_menu = settings.addMenu("Compute &device")
        self.device_menu.aboutToShow.connect(self._fill_device_menu)
        help_ = mb.addMenu("&Help")
        help_.addAction(self._action("Show &log file location", self._show_log_location))
        help_.addAction(self._action("&About", self._about))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = self.settings.recent_archives()
        for path in items:
            self.recent_menu.addAction(path, lambda p=path: self.open_archive(p))
        if not items:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def ensure_workspace(self) -> QTabWidget:
        """Build the tabs and docks (once)."""
        if self.tabs is not None:
            return self.tabs
        from rsgui.app.thumbnails import ThumbnailCache

        self.cache = ThumbnailCache(parent=self)
        self.cache.set_composite(self.state.composite)
        self.state.compositeChanged.connect(self.cache.set_composite)
        self.state.referenceChanged.connect(lambda: self.cache.set_reference(self.state.reference))
        self.tabs = QTabWidget()
        self.tabs.setObjectName("panelTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.tabBar().setChangeCurrentOnDrag(True)  # drag a tile onto "Search" to query
        self.tabs.tabBar().setAcceptDrops(True)

        def make_browser():
            from rsgui.app.panels.browser import BrowserPanel

            return BrowserPanel(self.state, self.cache)

        from rsgui.app.map_model import MapModel

        self.map_model = MapModel()  # shared by the map and the Search panel (selection, area)

        def make_query():
            from rsgui.app.panels.query import QueryPanel

            return QueryPanel(self.state, self.cache, map_model=self.map_model)

        self._add_tab("Archive", make_browser)
        self._add_tab("Search", make_query)
        for title, module, cls in EXTRA_PANELS:
            self._add_tab(title, self._extra_factory(title, module, cls))
        self.stack.addWidget(self.tabs)

        from rsgui.app.panels.viewer import ViewerPanel

        self.viewer = ViewerPanel(self.state)
        self.viewer_dock = QDockWidget("Viewer", self)
        self.viewer_dock.setObjectName("ViewerDock")
        self.viewer_dock.setWidget(self.viewer)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.viewer_dock)
        self.resizeDocks([self.viewer_dock], [520], Qt.Orientation.Horizontal)
        self.view_menu.addAction(self.viewer_dock.toggleViewAction())
        self._build_map_dock()
        # the Search panel listens to query changes even before its tab is shown
        self.panel("Search")
        saved = self.settings.state()
        if saved is not None:
            self.restoreState(saved)
        self.state.queryChanged.connect(self._query_set)
        return self.tabs

    def _build_map_dock(self) -> None:
        """The map below the viewer, so results, viewer and map are seen together."""
        try:
            from rsgui.app.panels.map_view import MapView

            self.map_view: QWidget = MapView(self.state, self.map_model)
        except Exception as exc:  # a broken map must not break the window
            log.exception("the map could not be created")
            self.map_view = placeholder(f"The map could not be loaded: {exc}")
        self.map_dock = QDockWidget("Map", self)
        self.map_dock.setObjectName("MapDock")
        self.map_dock.setWidget(self.map_view)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.map_dock)
        self.splitDockWidget(self.viewer_dock, self.map_dock, Qt.Orientation.Vertical)
        sizes = ([self.viewer_dock, self.map_dock], [420, 480], Qt.Orientation.Vertical)
        self.resizeDocks(*sizes)
        QTimer.singleShot(0, lambda: self.resizeDocks(*sizes))  # once the docks are laid out
        self.view_menu.addAction(self.map_dock.toggleViewAction())

    def _extra_factory(self, title: str, module: str, cls: str) -> Callable[[], QWidget]:
        def make() -> QWidget:
            klass = import_panel(module, cls, title)
            if klass is None:
                return placeholder(f"The {title} panel is not available in this version.")
            return klass(self.state)

        return make

    def _add_tab(self, title: str, factory: Callable[[], QWidget]) -> None:
        lazy = LazyPanel(factory, title)
        self.lazy[title] = lazy
        self.tabs.addTab(lazy, title)

    def panel(self, title: str) -> QWidget | None:
        """The panel of a tab, created if needed (``"Archive"``, ``"Search"``, ``"Evaluation"``…),
        or a dock's (``"Viewer"``, ``"Map"``)."""
        if title == "Viewer":
            self.ensure_workspace()
            return self.viewer
        if title == "Map":
            self.ensure_workspace()
            return self.map_view
        lazy = self.lazy.get(title)
        return lazy.panel() if lazy is not None else None

    def show_tab(self, title: str) -> None:
        self.ensure_workspace()
        self.stack.setCurrentWidget(self.tabs)
        self.tabs.setCurrentWidget(self.lazy[title])

    def _query_panel(self):
        if self.tabs is None:
            return None
        return self.panel("Search")

    # --- archive ------------------------------------------------------------------------------
    def choose_archive(self) -> None:
        start = str(
            self.state.archive_root or (self.settings.recent_archives() or [str(Path.home())])[0]
        )
        path = QFileDialog.getExistingDirectory(self, "Open an archive folder", start)
        if path:
            self.open_archive(path)

    def open_archive(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_dir():
            self.state.notify(
                f"{path}: not a folder; an archive is a folder of tiles", "error", path
            )
            self.settings.remove_recent_archive(path)
            self.welcome.refresh_recent()
            return
        self.status_label.setText(f"Opening {path}…")
        self.state.tasks.start(
            open_archive_job, path, name=f"Open {path.name}", key="open-archive",
            on_returned=self._archive_opened,
            on_error=lambda exc: self.state.notify(f"Cannot open archive {path}: {exc}", "error", path),
        )  # fmt: skip

    def _archive_opened(self, opened) -> None:
        """``opened``: an Archive, or ``(Archive, ReferenceSample)`` from :func:`open_archive_job`."""
        archive, reference = opened if isinstance(opened, tuple) else (opened, None)
        self.ensure_workspace()
        if self.cache is not None:
            self.cache.set_reference(reference)
        self.state.set_archive(archive, reference)
        self.settings.add_recent_archive(archive.root)
        self.welcome.refresh_recent()
        self.setWindowTitle(f"{Path(archive.root).name} — rsgui")
        self.show_tab("Archive")
        msg = f"Opened {archive.root}: {len(archive)} tiles, {len(archive.band_names)} bands"
        from rsgui.app.panels.index_offer import offer_hint

        msg += offer_hint(self.state)  # the demo has its index; a new archive is offered one
        if archive.problems:
            self.state.notify(
                f"{msg}; {len(archive.problems)} files skipped (see Archive report), e.g. "
                f"{archive.problems[0].path}: {archive.problems[0].reason}",
                "warning",
            )
        else:
            self.state.notify(msg)

    def create_demo(self) -> None:
        dest = user_data_dir() / "demo-archive"
        self.status_label.setText("Creating the demo archive…")
        self.state.tasks.start(
            demo_job, dest, name="Demo archive", key="demo", on_returned=self._demo_ready,
            on_error=lambda exc: self.state.notify(f"Cannot create the demo archive in {dest}: {exc}", "error"),
        )  # fmt: skip

    def _demo_ready(self, out) -> None:
        if out is None:
            return
        opened, index_path = out
        self._archive_opened(opened)
        archive = opened[0]
        query = self._query_panel()
        if query is not None:
            query.load_index(Path(index_path))
        if len(archive):
            self.state.set_query(self.state.tile_ref(0))
        self.show_tab("Search")

    def _query_set(self, ref) -> None:
        if (
            ref is not None
            and self.tabs is not None
            and self.tabs.currentWidget() is self.lazy.get("Archive")
        ):
            self.show_tab("Search")

    # --- search shortcuts -------------------------------------------------------------------
    def search(self) -> None:
        q = self._query_panel()
        if q is None:
            self.state.notify("Open an archive first.", "warning")
            return
        self.show_tab("Search")
        q.search()

    def step_result(self, step: int) -> None:
        q = self._query_panel()
        if q is not None:
            q.step_result(step)

    def _fill_device_menu(self) -> None:
        """CPU and every CUDA device torch sees (torch is imported here, not at start-up)."""
        from rsgui.app.devices import list_devices

        self.device_menu.clear()
        devices = list_devices()
        known = {d.id for d in devices}
        for d in devices:
            act = QAction(d.label, self, checkable=True)
            act.setData(d.id)
            act.setChecked(d.id == self.state.device)
            act.triggered.connect(lambda _=False, n=d.id: self.choose_device(n))
            self.device_menu.addAction(act)
        if self.state.device not in known:
            self.state.notify(
                f"Device {self.state.device} is not available here; using cpu", "warning"
            )
            self.choose_device("cpu")

    def choose_device(self, name: str) -> None:
        """The device for training and encoding, remembered across launches."""
        self.state.set_device(name)
        for act in self.device_menu.actions():
            act.setChecked(act.data() == name)

    # --- drag & drop --------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """A folder opens as an archive; a file becomes the query."""
        for url in event.mimeData().urls():
            if not url.isLocalFile():
                continue
            path = Path(url.toLocalFile())
            if path.is_dir():
                self.open_archive(path)
            else:
                from rsgui.app.models import TileRef

                archive = self.state.archive
                self.ensure_workspace()
                self.show_tab("Search")
                self.state.set_query(TileRef(path, archive.find(path) if archive else None))
            event.acceptProposedAction()
            return

    # --- messages & tasks -----------------------------------------------------------------------
    def _on_notice(self, notice: Notice) -> None:
        colour = {"error": "#c62828", "warning": "#ef6c00"}.get(notice.level, "")
        self.status_label.setStyleSheet(f"color: {colour};" if colour else "")
        self.status_label.setText(notice.text)
        item = QListWidgetItem(f"[{notice.level}] {notice.text}")
        if colour:
            item.setForeground(
                Qt.GlobalColor.red if notice.level == "error" else Qt.GlobalColor.darkYellow
            )
        self.notifications.addItem(item)
        self.notifications.scrollToBottom()
        while self.notifications.count() > 300:
            self.notifications.takeItem(0)
        if notice.level == "error" and not self.notif_dock.isVisible():
            self.notif_dock.setVisible(True)
            self.resizeDocks([self.notif_dock], [110], Qt.Orientation.Vertical)

    def _tasks_changed(self) -> None:
        active = self.state.tasks.active
        busy = bool(active)
        for w in (self.task_label, self.task_progress, self.task_cancel):
            w.setVisible(busy)
        if self._watched_task is not None:
            try:
                self._watched_task.progressed.disconnect(self._task_progress)
            except (RuntimeError, TypeError):
                pass
            self._watched_task = None
        if busy:
            task = active[-1]
            self._watched_task = task
            self.task_label.setText(
                task.name + (f" (+{len(active) - 1})" if len(active) > 1 else "")
            )
            self.task_progress.setRange(0, 0)
            task.progressed.connect(self._task_progress)
        elif self.status_label.text().startswith(("Opening", "Creating")):
            self.status_label.setText("Ready")

    def _task_progress(self, p) -> None:
        if p.total:
            self.task_progress.setRange(0, 1000)
            self.task_progress.setValue(int(1000 * (p.fraction or 0)))
        self.task_progress.setFormat(p.note or "%p%")

    def _show_log_location(self) -> None:
        from rsgui.app.logging_setup import log_file_path

        self.state.notify(f"Log file: {log_file_path()}")

    def _about(self) -> None:
        QMessageBox.about(
            self, "About rsgui",
            "rsgui: content-based retrieval of Sentinel-2 multispectral tiles with binary hash "
            "codes.\n\nTrue colour, false-colour and index views; spectral and learned indexes.",
        )  # fmt: skip

    def closeEvent(self, event: QCloseEvent) -> None:
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.set_composite(self.state.composite.to_dict())
        self.settings.set_scheduler(self.state.scheduler)
        self.settings.sync()
        self.state.tasks.cancel_all()
        self.state.tasks.wait_idle(3.0)
        if self.cache is not None:
            self.cache.shutdown()
        for lazy in self.lazy.values():
            if lazy._panel is not None and lazy._panel is not None:
                cache = getattr(lazy._panel, "cache", None)
                if cache is not None and cache is not self.cache:
                    cache.shutdown()
        super().closeEvent(event)


def app_instance() -> QApplication:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return app
