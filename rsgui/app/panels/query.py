"""Query panel: drop or pick a tile, choose an index, search, inspect and export the ranking.

Building an index, searching and exporting are the services' (:mod:`rsgui.services.indexing`,
:mod:`rsgui.services.search`); the panel runs them in a worker and shows what they return.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qdebounced

from rsgui.app.models import TileRef
from rsgui.app.state import AppState
from rsgui.app.thumbnails import (
    IndexRole,
    PathRole,
    ThumbnailCache,
    TileItem,
    TileListModel,
    make_grid_view,
    numpy_to_qimage,
    parse_tile_mime,
    read_raw_file,
)

if TYPE_CHECKING:
    from rsgui.services.indexing import IndexResult
    from rsgui.services.search import SearchResults

log = logging.getLogger(__name__)
OPEN_INDEX = "__open__"
GREEN = QColor("#2e7d32")
RED = QColor("#c62828")


# --- widgets --------------------------------------------------------------------------------
class QueryDropArea(QFrame):
    """Shows the query tile; accepts drops (our tile type or file URLs) and a click to pick."""

    def __init__(self, panel: QueryPanel) -> None:
        super().__init__(panel)
        self.panel = panel
        self.setObjectName("queryDrop")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumSize(140, 140)
        self.setStyleSheet("#queryDrop { border: 2px dashed #888; border-radius: 6px; }")
        self.image = QLabel("Drop a tile here")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedSize(128, 128)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(5, 5, 5, 5)
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignCenter)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        path, _, _ = parse_tile_mime(event.mimeData())
        if path:
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.panel.handle_drop(event.mimeData()):
            event.acceptProposedAction()

    def mouseDoubleClickEvent(self, _event) -> None:
        self.panel.choose_query_file()


class QueryPanel(QWidget):
    """Query tile + index choice + ranked results with precision, export and navigation."""

    def __init__(self, state: AppState, cache: ThumbnailCache | None = None, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.cache = cache or ThumbnailCache(parent=self)
        self.encoders: dict[int, object] = {}
        self.search_task = None
        self.build_task = None
        self.setAcceptDrops(True)

        # query
        self.drop = QueryDropArea(self)
        self.query_title = QLabel("No query yet")
        self.query_title.setWordWrap(True)
        self.query_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pick_button = QPushButton("Choose tile file…")
        hint = QLabel(
            "Drop a tile file here, drag one from the archive or the results, or double-click a "
            "tile in the archive."
        )
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid);")
        qinfo = QVBoxLayout()
        qinfo.addWidget(self.query_title)
        qinfo.addWidget(hint)
        qinfo.addWidget(self.pick_button, 0, Qt.AlignmentFlag.AlignLeft)
        qinfo.addStretch(1)

        # index & search
        self.index_combo = QComboBox()
        self.index_combo.setMinimumContentsLength(28)
        self.index_combo.setObjectName("indexCombo")
        self.bits_combo = QComboBox()
        for b in (32, 64, 128):
            self.bits_combo.addItem(f"{b} bits", b)
        self.bits_combo.setCurrentIndex(1)
        self.build_button = QPushButton("Build spectral index")
        self.build_button.setToolTip("Training-free colour-histogram hashing; takes seconds")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setMaximumWidth(180)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 500)
        self.k_spin.setValue(state.k)
        self.k_slider = QSlider(Qt.Orientation.Horizontal)
        self.k_slider.setRange(1, 100)
        self.k_slider.setValue(state.k)
        self.search_button = QPushButton("Search")
        self.search_button.setToolTip("Ctrl+Return")
        self.search_button.setDefault(True)
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Index"))
        row1.addWidget(self.index_combo, 1)
        row1.addWidget(self.bits_combo)
        row1.addWidget(self.build_button)
        row1.addWidget(self.progress)
        row1.addWidget(self.cancel_button)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Results k"))
        row2.addWidget(self.k_slider, 1)
        row2.addWidget(self.k_spin)
        row2.addWidget(self.search_button)
        controls = QVBoxLayout()
        controls.addLayout(qinfo, 1)
        controls.addLayout(row1)
        controls.addLayout(row2)
        top = QHBoxLayout()
        top.addWidget(self.drop)
        top.addLayout(controls, 1)

        self.message = QLabel("")
        self.message.setObjectName("queryMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QLabel("")
        self.summary.setObjectName("precisionLabel")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_geojson_button = QPushButton("Export GeoJSON…")
        for b in (self.export_csv_button, self.export_geojson_button):
            b.setEnabled(False)
        srow = QHBoxLayout()
        srow.addWidget(self.summary, 1)
        srow.addWidget(self.export_csv_button)
        srow.addWidget(self.export_geojson_button)

        self.model = TileListModel(self.cache, self._loader_for, self)
        self.view = make_grid_view(self, lines=3, width=124)
        self.view.setModel(self.model)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.message)
        lay.addLayout(srow)
        lay.addWidget(self.view, 1)

        # wiring
        self.pick_button.clicked.connect(self.choose_query_file)
        self.index_combo.activated.connect(self._index_chosen)
        self.build_button.clicked.connect(self.build_spectral_index)
        self.cancel_button.clicked.connect(self._cancel_build)
        self.search_button.clicked.connect(self.search)
        self.k_spin.valueChanged.connect(self._k_changed)
        self.k_slider.valueChanged.connect(self.k_spin.setValue)
        self.export_csv_button.clicked.connect(lambda: self.export_dialog("csv"))
        self.export_geojson_button.clicked.connect(lambda: self.export_dialog("geojson"))
        self.view.selectionModel().currentChanged.connect(self._result_current)
        self.view.doubleClicked.connect(self._result_as_query)
        self.view.customContextMenuRequested.connect(self._context_menu)
        state.queryChanged.connect(self._query_changed)
        state.indexesChanged.connect(self._indexes_changed)
        state.indexChanged.connect(self._index_changed)
        state.resultsChanged.connect(self._results_changed)
        state.archiveChanged.connect(self._archive_changed)
        state.compositeChanged.connect(self.cache.set_composite)
        state.compositeChanged.connect(lambda _c: self._show_query_preview())
        self._indexes_changed()
        self._archive_changed()

    # --- messages ---------------------------------------------------------------------------
    def show_message(self, text: str, level: str = "info") -> None:
        colour = {"error": "#c62828", "warning": "#ef6c00"}.get(level, "palette(text)")
        self.message.setStyleSheet(f"color: {colour};")
        self.message.setText(text)
        if level != "info" and text:
            self.state.notify(text, level)

    def _archive_changed(self) -> None:
        self.encoders.clear()
        self.build_button.setEnabled(self.state.archive is not None)
        self.model.archive_root = str(self.state.archive_root or "")

    # --- query --------------------------------------------------------------------------------
    def handle_drop(self, mime) -> bool:
        path, aidx, root = parse_tile_mime(mime)
        if not path:
            self.show_message("Nothing usable was dropped: drop a tile file.", "warning")
            return False
        archive = self.state.archive
        if aidx is not None and (archive is None or root != str(archive.root)):
            aidx = None
        if aidx is None and archive is not None:
            aidx = archive.find(path)
        self.state.set_query(TileRef(Path(path), aidx))
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if parse_tile_mime(event.mimeData())[0]:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.handle_drop(event.mimeData()):
            event.acceptProposedAction()

    def choose_query_file(self) -> None:
        start = str(self.state.archive_root or Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a query tile",
            start,
            "Raster tiles (*.tif *.tiff *.jpg *.jpeg *.png);;All files (*)",
        )
        if path:
            archive = self.state.archive
            self.state.set_query(TileRef(Path(path), archive.find(path) if archive else None))

    def _query_changed(self, ref: TileRef | None) -> None:
        self._show_query_preview()
        if ref is None:
            self.query_title.setText("No query yet")
            return
        label = None
        if ref.archive_index is not None and self.state.archive is not None:
            label = self.state.archive.records[ref.archive_index].label
        where = "archive tile" if ref.archive_index is not None else "outside file"
        self.query_title.setText(
            f"<b>{ref.name}</b><br>{'class ' + label if label else 'no class'} · {where}<br>"
            f"<span style='color:gray'>{ref.path.parent}</span>"
        )
        self.search()

    def _show_query_preview(self) -> None:
        ref = self.state.query
        if ref is None:
            self.drop.image.setPixmap(QPixmap())
            self.drop.image.setText("Drop a tile here")
            return
        from rsgui.app.render import render_safe

        try:
            if ref.archive_index is not None and self.state.archive is not None:
                raw, names = (
                    self.state.archive.read_raw(ref.archive_index),
                    self.state.archive.band_names,
                )
            else:
                archive = self.state.archive
                raw, names = read_raw_file(ref.path, archive.band_names if archive else ())
            reference = self.state.reference if ref.archive_index is not None else None
            img = numpy_to_qimage(render_safe(raw, tuple(names), self.state.composite, reference))
            pix = QPixmap.fromImage(img).scaled(
                128,
                128,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation,
            )
            self.drop.image.setPixmap(pix)
        except Exception as exc:
            self.drop.image.setPixmap(QPixmap())
            self.drop.image.setText("cannot\ndisplay")
            log.info("query preview of %s failed: %s", ref.path, exc)

    # --- indexes ------------------------------------------------------------------------------
    def _indexes_changed(self) -> None:
        self.index_combo.blockSignals(True)
        self.index_combo.clear()
        for entry in self.state.indexes:
            self.index_combo.addItem(entry.title, str(entry.path))
            self.index_combo.setItemData(
                self.index_combo.count() - 1, str(entry.path), Qt.ItemDataRole.ToolTipRole
            )
        if not self.state.indexes:
            self.index_combo.addItem("No index yet — build one", None)
        self.index_combo.insertSeparator(self.index_combo.count())
        self.index_combo.addItem("Open index…", OPEN_INDEX)
        self._select_current_in_combo()
        self.index_combo.blockSignals(False)
        if self.state.index is None and self.state.indexes and self.state.archive is not None:
            self.load_index(self.state.indexes[0].path)

    def _select_current_in_combo(self) -> None:
        if self.state.index_path is not None:
            i = self.index_combo.findData(str(self.state.index_path))
            if i >= 0:
                self.index_combo.setCurrentIndex(i)
                return
        self.index_combo.setCurrentIndex(0)

    def _index_chosen(self, row: int) -> None:
        data = self.index_combo.itemData(row)
        if data == OPEN_INDEX:
            path, _ = QFileDialog.getOpenFileName(
                self,
                "Open an index",
                str(self.state.archive_root or Path.home()),
                "Index (*.npz *.json)",
            )
            if path:
                self.load_index(Path(path))
            self._select_current_in_combo()
        elif data:
            self.load_index(Path(data))

    def load_index(self, path: Path) -> bool:
        from rsgui.index_store import HashIndex

        try:
            index = HashIndex.load(path)
        except Exception as exc:
            self.show_message(
                f"Cannot use index {path}: {exc}" if str(path) not in str(exc) else str(exc),
                "error",
            )
            return False
        self.state.set_index(index, Path(path).with_suffix(".npz"))
        if all(e.path != self.state.index_path for e in self.state.indexes):
            self.state.refresh_indexes()
        return True

    def _index_changed(self) -> None:
        self.index_combo.blockSignals(True)
        self._select_current_in_combo()
        self.index_combo.blockSignals(False)
        index = self.state.index
        if index is not None:
            self.k_spin.setMaximum(max(1, len(index)))
            self.k_slider.setMaximum(max(1, min(200, len(index))))
            self.show_message(
                f"Index: {index.meta.method}, {index.meta.bits} bits, {len(index)} tiles, bands "
                f"{' '.join(index.meta.band_names)}."
            )
            if self.state.query is not None:
                self.search()

    def build_spectral_index(self) -> None:
        archive = self.state.archive
        if archive is None:
            self.show_message("Open an archive first.", "warning")
            return
        bits = int(self.bits_combo.currentData())
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(True)
        self.build_button.setEnabled(False)
        self.show_message(f"Building a {bits}-bit spectral index of {len(archive)} tiles…")
        from rsgui.services.indexing import spectral_index_job  # numpy & co. when first used

        self.build_task = self.state.tasks.start(
            spectral_index_job, archive, bits, name="Build spectral index", key="build-index",
            on_progress=self._build_progress, on_returned=self._build_done,
            on_error=self._build_failed, on_cancelled=lambda: self.show_message("Index building cancelled."),
            on_finished=self._build_finished,
        )  # fmt: skip

    def _build_progress(self, p) -> None:
        if p.total:
            self.progress.setRange(0, int(p.total))
            self.progress.setValue(int(p.done))
        self.progress.setFormat(f"{p.note or 'working'} %p%")

    def _build_done(self, result: IndexResult) -> None:
        self.state.refresh_indexes()
        self.load_index(Path(result.path))
        self.state.notify(f"Index saved: {result.path}")

    def _build_failed(self, exc: BaseException) -> None:
        log.error("index build failed", exc_info=(type(exc), exc, exc.__traceback__))
        self.show_message(f"Building the index failed: {exc}", "error")

    def _build_finished(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.build_button.setEnabled(self.state.archive is not None)

    def _cancel_build(self) -> None:
        if self.build_task is not None:
            self.build_task.cancel()

    # --- search -------------------------------------------------------------------------------
    def _k_changed(self, k: int) -> None:
        self.state.set_k(k)
        if self.k_slider.value() != k and k <= self.k_slider.maximum():
            self.k_slider.blockSignals(True)
            self.k_slider.setValue(k)
            self.k_slider.blockSignals(False)
        self._research()

    @qdebounced(timeout=200)
    def _research(self) -> None:
        if self.state.query is not None and self.state.index is not None:
            self.search()

    def search(self) -> None:
        """Search the chosen index with the query (in a worker); errors land in the panel."""
        ref, index = self.state.query, self.state.index
        if ref is None:
            self.show_message("Choose a query tile first: drop one here or pick a file.", "warning")
            return
        if index is None:
            self.show_message("Choose an index or build a spectral index first.", "warning")
            return
        self.show_message(f"Searching {len(index)} tiles with {ref.name}…")
        encoder = self.encoders.get(id(index))
        from rsgui.services.search import search

        self.search_task = self.state.tasks.start(
            search, index, ref, self.state.k, archive=self.state.archive, encoder=encoder,
            index_path=self.state.index_path, name="Search", key="search",
            on_returned=self._search_done, on_error=self._search_failed,
        )  # fmt: skip

    def _search_done(self, results: SearchResults) -> None:
        if self.state.index is not None:
            self.encoders[id(self.state.index)] = results.encoder
        self.state.set_results(results)
        self.show_message(
            f"{len(results.rows)} results in {results.elapsed_s * 1000:.0f} ms"
            + (
                " (the query itself is left out)."
                if results.query.archive_index is not None
                else "."
            )
        )

    def _search_failed(self, exc: BaseException) -> None:
        log.info("search failed", exc_info=(type(exc), exc, exc.__traceback__))
        ref = self.state.query
        text = str(exc)
        if ref is not None and ref.name not in text:
            text = f"{ref.path}: {text}"
        self.state.set_results(None)
        self.show_message(f"Cannot search with this query — {text}", "error")

    # --- results ------------------------------------------------------------------------------
    def _results_changed(self) -> None:
        res = self.state.results
        items: list[TileItem] = []
        if res is not None:
            for r in res.rows:
                d = f"d={r.distance}" if res.kind == "binary" else f"1−cos={r.distance:.3f}"
                border = None if r.correct is None else (GREEN if r.correct else RED)
                key = ("a", r.archive_index) if r.archive_index is not None else ("f", r.path)
                items.append(
                    TileItem(
                        key=key, title=Path(r.path).name, subtitle=f"#{r.rank}   {d}\n{r.label or '—'}",
                        archive_index=r.archive_index, path=r.path, border=border,
                        tooltip=f"{r.path}\nclass {r.label or '—'}\n{d}",
                    )
                )  # fmt: skip
        self.model.set_items(items)
        has = bool(items)
        self.export_csv_button.setEnabled(has)
        self.export_geojson_button.setEnabled(has)
        self.summary.setText(self.summary_text())

    def summary_text(self) -> str:
        res = self.state.results
        if res is None:
            return ""
        k = len(res.rows)
        p = res.precision_at(k)
        cls = f" of class {res.query_label}" if res.query_label else ""
        if p is None:
            prec = "precision unknown (no class labels)"
        else:
            n_ok = sum(bool(r.correct) for r in res.rows)
            prec = f"precision@{k} = {p:.2f} ({n_ok} of {k} share the class)"
        return f"<b>{res.query.name}</b>{cls}: {prec} · {res.method}, {res.bits} bits"

    def result_count(self) -> int:
        return self.model.rowCount()

    def _loader_for(self, item: TileItem):
        archive = self.state.archive
        if item.archive_index is not None and archive is not None:
            i = item.archive_index
            return lambda: (archive.read_raw(i), archive.band_names)
        bands = archive.band_names if archive is not None else ()
        return lambda: read_raw_file(item.path, bands)

    def _result_current(self, current: QModelIndex, _prev: QModelIndex) -> None:
        if current.isValid():
            self.state.select_tile(self._ref_of(current))

    def _ref_of(self, index: QModelIndex) -> TileRef:
        aidx = index.data(IndexRole)
        return TileRef(Path(index.data(PathRole)), aidx)

    def _result_as_query(self, index: QModelIndex) -> None:
        if index.isValid():
            self.state.set_query(self._ref_of(index))

    def _context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addAction("Use as next query", lambda: self._result_as_query(index))
        menu.addAction("Show in viewer", lambda: self.state.select_tile(self._ref_of(index)))
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def step_result(self, step: int) -> None:
        """Select the next (+1) or previous (-1) result and show it in the viewer."""
        n = self.model.rowCount()
        if not n:
            return
        row = self.view.currentIndex().row()
        row = 0 if row < 0 else max(0, min(n - 1, row + step))
        self.view.setCurrentIndex(self.model.index(row))

    def export_dialog(self, fmt: str) -> None:
        res = self.state.results
        if res is None:
            return
        suffix = ".csv" if fmt == "csv" else ".geojson"
        default = str(Path.home() / f"results-{res.query.path.stem}{suffix}")
        filt = "CSV (*.csv)" if fmt == "csv" else "GeoJSON (*.geojson *.json)"
        path, _ = QFileDialog.getSaveFileName(self, "Export results", default, filt)
        if path:
            self.export(path)

    def export(self, path: str | Path) -> Path | None:
        res = self.state.results
        if res is None:
            return None
        from rsgui.services.search import export_results

        try:
            out = export_results(res, path, self.state.archive)
        except OSError as exc:
            self.show_message(f"{path}: cannot write the export ({exc.strerror or exc})", "error")
            return None
        self.state.notify(f"Results exported: {out}")
        return out
