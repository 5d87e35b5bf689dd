"""The offer to index a newly opened archive: a bar at the top of the Search tab.

An archive without an index cannot be searched. Right after one is opened (the demo indexes
itself), the bar says so and offers one button, "Index this archive with <method>", using the
strongest method that needs no training and is installed (:func:`offered_method`). The build
runs in a worker (:mod:`rsgui.services.indexing`) with its progress and a Cancel button in the
bar; when it is done the index is loaded and the bar goes away. "Not now" hides it for this
archive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton

from rsgui.app.state import AppState

log = logging.getLogger(__name__)

# Training-free methods, strongest first. A method is offered when the registry has it and, when
# the registry can tell, it is installed (its backbone weights present); ``spectral`` always is.
PREFERENCE: tuple[str, ...] = ("pretrained", "spectral")


def _installed(key: str) -> bool:
    from rsgui.encoders import registry

    spec = registry.METHODS.get(key)
    if spec is None or spec.trained or not spec.retrieval:
        return False
    if key == "spectral":
        return True
    check = getattr(registry, "installed", None) or getattr(registry, "available", None)
    if callable(check):
        try:
            return bool(check(key))
        except Exception:  # a broken optional install is simply not offered
            log.info("cannot tell whether %s is installed", key, exc_info=True)
            return False
    return False  # no way to tell: offer what surely works


def offered_method() -> str:
    """The training-free method the offer uses: the first of :data:`PREFERENCE` installed."""
    return next((k for k in PREFERENCE if _installed(k)), "spectral")


def index_offer_job(archive, method: str, bits: int = 64):
    """Index ``archive`` with ``method`` where the archive's indexes are found; returns the
    :class:`rsgui.services.indexing.IndexResult`."""
    from rsgui.index_store import writable_index_dir
    from rsgui.services.indexing import default_bands, index_job, spectral_index_job

    if method == "spectral":
        return (yield from spectral_index_job(archive, bits))
    bands = default_bands(archive)
    out = writable_index_dir(Path(archive.root)) / f"{method}-{bands}-{bits}"
    return (yield from index_job(archive, method, out, bits=bits))


class IndexOfferBar(QFrame):
    """ "No index for this archive yet" with one button that builds it; hidden otherwise.

    ``load_index(path)`` is the Search panel's: it loads the built index and selects it."""

    def __init__(self, state: AppState, load_index: Callable[[Path], object], parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.load_index = load_index
        self.task = None
        self.method = offered_method()
        self._dismissed: set[str] = set()
        self.setObjectName("indexOffer")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "#indexOffer { background: #fff8e1; border: 1px solid #ffcc80; border-radius: 4px; }"
        )
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.button = QPushButton()
        self.button.setObjectName("indexOfferButton")
        self.button.setDefault(True)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.later_button = QPushButton("Not now")
        self.later_button.setFlat(True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.button)
        lay.addWidget(self.cancel_button)
        lay.addWidget(self.later_button)

        self.button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.later_button.clicked.connect(self.dismiss)
        state.archiveChanged.connect(self.refresh)
        state.indexesChanged.connect(self.refresh)
        self.refresh()

    # --- when to show ----------------------------------------------------------------------
    def _key(self) -> str:
        return str(self.state.archive_root or "")

    def wanted(self) -> bool:
        """An archive is open, it has no index, and the offer was not declined for it."""
        archive = self.state.archive
        return (
            archive is not None
            and len(archive) > 0
            and not self.state.indexes
            and self.state.index is None
            and self._key() not in self._dismissed
        )

    def refresh(self) -> None:
        if self.task is not None:
            return  # building: keep the progress on screen
        archive = self.state.archive
        self.setVisible(self.wanted())
        if archive is None:
            return
        from rsgui.encoders.registry import METHODS

        self.button.setText(f"Index this archive with {self.method}")
        self.button.setToolTip(f"{METHODS[self.method].label}: needs no training")
        self.text.setText(
            f"<b>No index for this archive yet.</b> Searching its {len(archive):,} tiles needs "
            "one; it is built once and found again the next time the archive is opened."
        )
        self.button.setEnabled(True)

    def dismiss(self) -> None:
        self._dismissed.add(self._key())
        self.setVisible(False)

    # --- building ---------------------------------------------------------------------------
    def start(self) -> None:
        archive = self.state.archive
        if archive is None or self.task is not None:
            return
        self.button.setEnabled(False)
        self.later_button.setVisible(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(True)
        self.text.setText(f"Indexing {len(archive):,} tiles with {self.method}…")
        self.task = self.state.tasks.start(
            index_offer_job, archive, self.method, name=f"Index with {self.method}",
            key="build-index", on_progress=self._progress, on_returned=self._done,
            on_error=self._failed, on_cancelled=self._cancelled, on_finished=self._finished,
        )  # fmt: skip

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _progress(self, p) -> None:
        if p.total:
            self.progress.setRange(0, int(p.total))
            self.progress.setValue(int(p.done))
        self.progress.setFormat(f"{p.note or 'working'} %p%")

    def _done(self, result) -> None:
        self.state.refresh_indexes()
        self.load_index(Path(result.path))
        self.state.notify(
            f"Index saved: {result.path}. Drop a tile on the Search tab, or double-click one in "
            "the Archive tab, to search."
        )

    def _failed(self, exc: BaseException) -> None:
        log.error("index build failed", exc_info=(type(exc), exc, exc.__traceback__))
        self.state.notify(f"Indexing {self._key()} failed: {exc}", "error")

    def _cancelled(self) -> None:
        self.state.notify("Indexing cancelled; the Search tab offers it again.")

    def _finished(self) -> None:
        self.task = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.later_button.setVisible(True)
        self.refresh()


def offer_hint(state: AppState) -> str:
    """A sentence for the "opened" notice when the archive has no index yet, else ""."""
    if state.archive is None or state.indexes or not len(state.archive):
        return ""
    return f"; no index yet: the Search tab offers to index it with {offered_method()}"
