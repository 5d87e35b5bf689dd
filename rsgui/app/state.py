"""Shared application state: what is open, what is shown, what was found.

Views never own state: they observe :class:`AppState` through its Qt signals and send user intent
back by calling its setters. The data held here are the plain records of
:mod:`rsgui.app.models` (no widgets), so a panel, a test or the screenshot driver can read them.

Signals (all emitted on the GUI thread):

- ``archiveChanged()``: :attr:`AppState.archive` replaced (or closed: ``None``).
- ``compositeChanged(Composite)``: band composite / stretch of the viewer, thumbnails and results.
- ``tileSelected(TileRef)``: show this tile in the viewer (archive tile or outside file).
- ``queryChanged(TileRef | None)``: the query tile changed (a new search of one example).
- ``sessionChanged()``: :attr:`AppState.session` (the examples, marks, filters of the search)
  changed.
- ``indexesChanged()``: the list of indexes found for the archive changed.
- ``indexChanged()``: :attr:`AppState.index` (the one searched) replaced.
- ``resultsChanged()``: :attr:`AppState.results` replaced.
- ``referenceChanged()``: :attr:`AppState.reference` (archive pixel sample for stretches) replaced.
- ``deviceChanged(str)``: compute device for training/encoding (``"cpu"``, ``"cuda"``...).
- ``notified(Notice)``: a message for the status bar and the notification area.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from rsgui.app.models import Composite, Notice, ReferenceSample, SearchSession, TileRef
from rsgui.app.workers import TaskManager

if TYPE_CHECKING:  # heavy modules are imported only when used
    from rsgui.archive import Archive
    from rsgui.index_store import HashIndex, IndexEntry
    from rsgui.services.search import SearchResults

log = logging.getLogger(__name__)


class AppState(QObject):
    """The single source of truth shared by every panel (see module docstring for signals)."""

    archiveChanged = Signal()
    compositeChanged = Signal(object)
    tileSelected = Signal(object)
    queryChanged = Signal(object)
    sessionChanged = Signal()
    indexesChanged = Signal()
    indexChanged = Signal()
    resultsChanged = Signal()
    deviceChanged = Signal(str)
    notified = Signal(object)
    referenceChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.archive: Archive | None = None
        self.reference: ReferenceSample | None = None
        self.composite = Composite()
        self.selected: TileRef | None = None
        self.query: TileRef | None = None
        self.session = SearchSession()
        self.indexes: list[IndexEntry] = []
        self.index: HashIndex | None = None
        self.index_path: Path | None = None
        self.results: SearchResults | None = None
        self.k: int = 20
        self.device: str = "cpu"
        self.scheduler: str = ""  # index on: "" this process, "local" or a Dask scheduler address
        self.tasks = TaskManager(self)
        self.notices: list[Notice] = []
        self.tasks.taskFailed.connect(self._task_failed)

    # --- archive -------------------------------------------------------------------------
    @property
    def archive_root(self) -> Path | None:
        return None if self.archive is None else Path(self.archive.root)

    def set_archive(
        self, archive: Archive | None, reference: ReferenceSample | None = None
    ) -> None:
        """Replace the open archive; resets query, index and results that belonged to the old one.
        ``reference``: pixels sampled over the archive for archive-wide stretches."""
        self.archive = archive
        self.reference = reference
        self.selected = None
        self.query = None
        self.session = SearchSession()
        self.index = None
        self.index_path = None
        self.results = None
        self.indexes = []
        self.archiveChanged.emit()
        self.queryChanged.emit(None)
        self.indexChanged.emit()
        self.resultsChanged.emit()
        self.refresh_indexes()

    def refresh_indexes(self) -> None:
        """Re-scan the archive's index folder(s) for ``*.npz`` + ``*.json`` indexes."""
        from rsgui.index_store import entry_for, scan_indexes  # numpy & co. only when needed

        self.indexes = scan_indexes(self.archive_root) if self.archive is not None else []
        extra = self.index_path
        if extra is not None and all(e.path != extra for e in self.indexes):
            entry = entry_for(extra)
            if entry is not None:
                self.indexes.append(entry)
        self.indexesChanged.emit()

    # --- display -------------------------------------------------------------------------
    def set_composite(self, composite: Composite) -> None:
        if composite != self.composite:
            self.composite = composite
            self.compositeChanged.emit(composite)

    def set_reference(self, reference: ReferenceSample | None) -> None:
        self.reference = reference
        self.referenceChanged.emit()

    def select_tile(self, ref: TileRef | None) -> None:
        self.selected = ref
        self.tileSelected.emit(ref)

    def tile_ref(self, archive_index: int) -> TileRef:
        """A :class:`TileRef` for a tile of the open archive."""
        assert self.archive is not None
        rec = self.archive.records[archive_index]
        return TileRef(Path(self.archive.root) / rec.path, archive_index)

    # --- search --------------------------------------------------------------------------
    def set_query(self, ref: TileRef | None) -> None:
        """A new search of one example: the previous examples and marks are dropped, the
        filters and the combination kept."""
        self.query = ref
        old = self.session
        self.session = SearchSession.single(ref)
        self.session.filters, self.session.combine = old.filters, old.combine
        self.sessionChanged.emit()
        self.queryChanged.emit(ref)

    def set_session(self, session: SearchSession) -> None:
        """Replace the search's examples, marks and filters (the query is its first example)."""
        self.session = session
        self.query = session.query
        self.sessionChanged.emit()

    def set_index(self, index: HashIndex | None, path: Path | None = None) -> None:
        self.index = index
        self.index_path = None if path is None else Path(path)
        self.results = None
        self.indexChanged.emit()
        self.resultsChanged.emit()

    def set_results(self, results: SearchResults | None) -> None:
        self.results = results
        self.resultsChanged.emit()

    def set_k(self, k: int) -> None:
        self.k = max(1, int(k))

    def set_device(self, device: str) -> None:
        if device != self.device:
            self.device = device
            self.deviceChanged.emit(device)

    # --- messages ------------------------------------------------------------------------
    def notify(self, text: str, level: str = "info", path: str | Path | None = None) -> None:
        """Show a message in the status bar and the notification area (and log it)."""
        notice = Notice(text, level, None if path is None else str(path))  # type: ignore[arg-type]
        self.notices.append(notice)
        del self.notices[:-200]
        {"info": log.info, "warning": log.warning}.get(level, log.error)("%s", text)
        self.notified.emit(notice)

    def _task_failed(self, task: Any, exc: BaseException) -> None:
        log.error("Task %r failed", task.name, exc_info=(type(exc), exc, exc.__traceback__))
        self.notify(f"{task.name} failed: {exc}", "error")
