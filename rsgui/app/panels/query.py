"""Query panel: drop or pick tiles, choose an index, search, mark results, refine, filter, save
the search, inspect and export the ranking.

A query is a set of example tiles (:class:`rsgui.app.models.SearchSession`): drop several, or add
results with "More like this" / "Not wanted"; "Refine" fits a linear model on the marks and shows
its ranking until it is accepted or undone.

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
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qdebounced

from rsgui.app.map_model import MapModel
from rsgui.app.models import SearchSession, TileRef
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
COMBINE_LABELS = {"sum": "sum of distances", "majority": "majority code", "min": "nearest example"}
REFINE_LABELS = {"logreg": "logistic regression", "svm": "linear SVM"}
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

    def __init__(
        self,
        state: AppState,
        cache: ThumbnailCache | None = None,
        parent=None,
        map_model: MapModel | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self.cache = cache or ThumbnailCache(parent=self)
        self.map_model: MapModel | None = None
        self._searched_area = None  # the map area the shown results were restricted to
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
        self.cluster_edit = QLineEdit(getattr(state, "scheduler", ""))  # where indexes are built
        self.cluster_edit.setPlaceholderText("cluster: none")
        self.cluster_edit.setMaximumWidth(150)
        self.cluster_edit.setToolTip("Build on a Dask cluster: 'local' (this machine's cores) or a "
                                     "scheduler address, tcp://host:8786; empty: in this process")  # fmt: skip
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
        row1.addWidget(self.cluster_edit)
        row1.addWidget(self.build_button)
        self.update_button = QPushButton("Update index")
        self.update_button.setObjectName("updateIndexButton")
        self.update_button.setToolTip("Encode only the tiles changed or added since the index "
                                      "was built, drop removed ones")  # fmt: skip
        self.update_button.setVisible(False)
        self.update_button.clicked.connect(self.update_index)
        row1.addWidget(self.update_button)
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

        # the examples of the search (wanted: green, not wanted: red), how they combine
        self.examples_model = TileListModel(self.cache, self._loader_for, self)
        self.examples_view = make_grid_view(self, lines=1, width=76)
        self.examples_view.setObjectName("examplesView")
        self.examples_view.setModel(self.examples_model)
        self.examples_view.setFlow(QListView.Flow.LeftToRight)
        self.examples_view.setWrapping(False)
        self.examples_view.setFixedHeight(118)
        self.examples_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.examples_view.setVisible(False)
        self.examples_label = QLabel("")
        self.examples_label.setObjectName("examplesLabel")
        self.combine_combo = QComboBox()
        for key, text in COMBINE_LABELS.items():
            self.combine_combo.addItem(text, key)
        self.combine_combo.setToolTip("How the distances to several examples become one ranking")
        self.clear_button = QPushButton("Clear examples")
        ex_row = QHBoxLayout()
        ex_row.addWidget(self.examples_label, 1)
        ex_row.addWidget(QLabel("Combine"))
        ex_row.addWidget(self.combine_combo)
        ex_row.addWidget(self.clear_button)

        # filters (scene and date only when the tiles' paths name them, area with footprints)
        self.class_button = QToolButton()
        self.class_button.setText("Classes: all")
        self.class_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.class_menu = QMenu(self.class_button)
        self.class_button.setMenu(self.class_menu)
        self.bbox_edit = QLineEdit()
        self.bbox_edit.setPlaceholderText("area W,S,E,N (lon/lat)")
        self.bbox_edit.setClearButtonEnabled(True)
        self.bbox_edit.setMinimumWidth(240)
        self.bbox_edit.setMaximumWidth(320)
        self.scene_combo = QComboBox()
        self.date_combo = QComboBox()
        f_row = QHBoxLayout()
        f_row.addWidget(QLabel("Filter"))
        f_row.addWidget(self.class_button)
        f_row.addWidget(self.bbox_edit)
        f_row.addWidget(self.scene_combo)
        f_row.addWidget(self.date_combo)
        f_row.addStretch(1)

        self.message = QLabel("")
        self.message.setObjectName("queryMessage")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary = QLabel("")
        self.summary.setObjectName("precisionLabel")
        self.summary.setWordWrap(True)  # filters can make it long; never widen the window
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_geojson_button = QPushButton("Export GeoJSON…")
        for b in (self.export_csv_button, self.export_geojson_button):
            b.setEnabled(False)
        srow = QHBoxLayout()
        srow.addWidget(self.summary, 1)
        srow.addWidget(self.export_csv_button)
        srow.addWidget(self.export_geojson_button)

        # marks and refinement
        self.more_button = QPushButton("More like this")
        self.more_button.setToolTip("Add the selected results to the examples (wanted)")
        self.not_button = QPushButton("Not wanted")
        self.not_button.setToolTip(
            "Mark the selected results as not wanted: tiles like them move down"
        )
        self.refine_combo = QComboBox()
        for key, text in REFINE_LABELS.items():
            self.refine_combo.addItem(text, key)
        self.refine_button = QPushButton("Refine")
        self.refine_button.setToolTip("Re-rank the archive with a model fitted on the marked tiles")
        self.save_search_button = QPushButton("Save search…")
        self.open_search_button = QPushButton("Open search…")
        for b in (self.more_button, self.not_button, self.refine_button, self.save_search_button):
            b.setEnabled(False)
        mrow = QHBoxLayout()
        mrow.addWidget(self.more_button)
        mrow.addWidget(self.not_button)
        mrow.addSpacing(12)
        mrow.addWidget(self.refine_combo)
        mrow.addWidget(self.refine_button)
        mrow.addStretch(1)
        mrow.addWidget(self.save_search_button)
        mrow.addWidget(self.open_search_button)
        self.banner = QFrame()
        self.banner.setObjectName("refineBanner")
        self.banner.setStyleSheet(
            "#refineBanner { background: #fff8e1; border: 1px solid #ffb300; border-radius: 4px; }"
        )
        self.banner_label = QLabel("")
        self.banner_label.setWordWrap(True)
        self.accept_button = QPushButton("Accept")
        self.undo_button = QPushButton("Undo")
        brow = QHBoxLayout(self.banner)
        brow.setContentsMargins(6, 3, 6, 3)
        brow.addWidget(self.banner_label, 1)
        brow.addWidget(self.accept_button)
        brow.addWidget(self.undo_button)
        self.banner.setVisible(False)

        self.model = TileListModel(self.cache, self._loader_for, self)
        self.view = make_grid_view(self, lines=3, width=124)
        self.view.setModel(self.model)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        from rsgui.app.panels.index_offer import IndexOfferBar  # a new archive: offer an index

        self.index_offer = IndexOfferBar(state, self.load_index, self)
        lay.addWidget(self.index_offer)
        lay.addLayout(top)
        lay.addLayout(ex_row)
        lay.addWidget(self.examples_view)
        lay.addLayout(f_row)
        lay.addWidget(self.message)
        lay.addLayout(srow)
        lay.addLayout(mrow)
        lay.addWidget(self.banner)
        lay.addWidget(self.view, 1)

        # wiring
        self.pick_button.clicked.connect(self.choose_query_file)
        self.index_combo.activated.connect(self._index_chosen)
        self.build_button.clicked.connect(self.build_spectral_index)
        self.cluster_edit.editingFinished.connect(
            lambda: setattr(self.state, "scheduler", self.cluster_edit.text().strip())
        )
        self.cancel_button.clicked.connect(self._cancel_build)
        self.search_button.clicked.connect(self.search)
        self.k_spin.valueChanged.connect(self._k_changed)
        self.k_slider.valueChanged.connect(self.k_spin.setValue)
        self.export_csv_button.clicked.connect(lambda: self.export_dialog("csv"))
        self.export_geojson_button.clicked.connect(lambda: self.export_dialog("geojson"))
        self.view.selectionModel().currentChanged.connect(self._result_current)
        self.view.doubleClicked.connect(self._result_as_query)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.examples_view.customContextMenuRequested.connect(self._examples_menu)
        self.combine_combo.activated.connect(lambda _i: self._combine_changed())
        self.clear_button.clicked.connect(self.clear_examples)
        self.class_menu.triggered.connect(lambda _a: self._filters_changed())
        self.bbox_edit.editingFinished.connect(self._filters_changed)
        self.scene_combo.activated.connect(lambda _i: self._filters_changed())
        self.date_combo.activated.connect(lambda _i: self._filters_changed())
        self.more_button.clicked.connect(lambda: self.mark_selected(1))
        self.not_button.clicked.connect(lambda: self.mark_selected(-1))
        self.refine_button.clicked.connect(self.refine)
        self.accept_button.clicked.connect(self.accept_refined)
        self.undo_button.clicked.connect(self.undo_refined)
        self.save_search_button.clicked.connect(self.save_search_dialog)
        self.open_search_button.clicked.connect(self.open_search_dialog)
        state.sessionChanged.connect(self._session_changed)
        state.queryChanged.connect(self._query_changed)
        state.indexesChanged.connect(self._indexes_changed)
        state.indexChanged.connect(self._index_changed)
        state.resultsChanged.connect(self._results_changed)
        state.archiveChanged.connect(self._archive_changed)
        state.compositeChanged.connect(self.cache.set_composite)
        state.compositeChanged.connect(lambda _c: self._show_query_preview())
        self._indexes_changed()
        self._archive_changed()
        self._session_changed()
        if map_model is not None:
            self.set_map_model(map_model)

    # --- the map (shared selection and search area) ---------------------------------------------
    def set_map_model(self, model: MapModel) -> None:
        """Select together with the map and restrict searches to its area (when switched on):
        the grid observes ``model``, never the map widget."""
        self.map_model = model
        model.selection_changed.connect(self._map_selected)
        model.area_changed.connect(self._map_area_changed)

    def _map_selected(self, archive_index: int | None) -> None:
        """The map (or the archive browser) selected a tile: the grid follows when it is a result."""
        row = next(
            (i for i, it in enumerate(self.model.items) if it.archive_index == archive_index), None
        ) if archive_index is not None else None  # fmt: skip
        if row is None:
            self.view.selectionModel().clearSelection()
            return
        if self.view.currentIndex().row() != row:
            self.view.setCurrentIndex(self.model.index(row))
            self.view.scrollTo(self.model.index(row))

    def search_area(self):
        """The lon/lat box the search is restricted to (the map's area filter), or None."""
        return self.map_model.search_area if self.map_model is not None else None

    def _map_area_changed(self) -> None:
        if self.search_area() != self._searched_area:
            self._research_area()

    @qdebounced(timeout=300)
    def _research_area(self) -> None:
        if self.search_area() != self._searched_area and self.state.query is not None:
            self._research()

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
        self.examples_model.archive_root = str(self.state.archive_root or "")
        self._fill_filters()

    # --- query --------------------------------------------------------------------------------
    def handle_drop(self, mime) -> bool:
        """A dropped tile starts a search; dropped onto a search it joins its examples. Several
        files dropped at once are all examples of one search."""
        refs = self._refs_from_mime(mime)
        if not refs:
            self.show_message("Nothing usable was dropped: drop a tile file.", "warning")
            return False
        self.add_examples(refs)
        return True

    def _refs_from_mime(self, mime) -> list[TileRef]:
        path, aidx, root = parse_tile_mime(mime)
        if not path:
            return []
        archive = self.state.archive
        if aidx is not None and (archive is None or root != str(archive.root)):
            aidx = None
        paths = [(path, aidx)]
        if aidx is None and mime.hasUrls():
            paths = [(u.toLocalFile(), None) for u in mime.urls() if u.isLocalFile()]
        refs = []
        for p, i in paths:
            if i is None and archive is not None:
                i = archive.find(p)
            refs.append(TileRef(Path(p), i))
        return refs

    def add_examples(self, refs: list[TileRef], mark: int = 1) -> None:
        """Add tiles to the search as wanted (+1) or not-wanted (-1) examples and search again;
        with no search yet the first wanted tile starts one."""
        session = self.state.session
        if not session.positives:
            first = next((r for r in refs if mark > 0), None)
            if first is None:
                self.show_message(
                    "Start with a tile you want; then mark what you do not want.", "warning"
                )
                return
            self.state.set_query(first)  # a new search of one tile (searches)
            refs = [r for r in refs if r is not first]
            if not refs:
                return
            session = self.state.session
        for r in refs:
            session.mark(r, mark)
        self._warm_refine()
        session.pending = session.base = None
        self.state.set_session(session)
        self.search()

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
        self._session_changed()
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
        from rsgui.shards import is_sharded, open_index

        try:
            index = open_index(path)  # an .npz index or a sharded index folder
        except Exception as exc:
            self.show_message(
                f"Cannot use index {path}: {exc}" if str(path) not in str(exc) else str(exc),
                "error",
            )
            return False
        self.state.set_index(
            index, Path(path) if is_sharded(path) else Path(path).with_suffix(".npz")
        )
        if all(e.path != self.state.index_path for e in self.state.indexes):
            self.state.refresh_indexes()
        return True

    def _index_changed(self) -> None:
        self.index_combo.blockSignals(True)
        self._select_current_in_combo()
        self.index_combo.blockSignals(False)
        index = self.state.index
        self._fill_filters()
        if index is not None:
            self.k_spin.setMaximum(max(1, len(index)))
            self.k_slider.setMaximum(max(1, min(200, len(index))))
            self.show_message(
                f"Index: {index.meta.method}, {index.meta.bits} bits, {len(index)} tiles, bands "
                f"{' '.join(index.meta.band_names)}."
            )
            self._check_stale(index)
            if self.state.query is not None:
                self.search()
        else:
            self.update_button.setVisible(False)

    def _check_stale(self, index) -> None:
        """Say when the index's archive changed since it was built (from the open archive's
        scan: no file is read) and offer to update it for the changed tiles only."""
        from rsgui.services.index_update import index_changes

        archive = self.state.archive
        same = (
            archive is not None
            and index.meta.archive_root
            and Path(index.meta.archive_root) == Path(archive.root)
        )
        changes = index_changes(index, archive, deep=False) if same else None
        stale = changes is not None and changes.stale
        self.update_button.setVisible(bool(stale))
        if stale:
            self.show_message(
                f"Index out of date: {changes.summary()}; Update index encodes only those.",
                "warning",
            )

    def update_index(self) -> None:
        """Bring the chosen index up to date with the open archive (a job in a worker)."""
        path, archive = self.state.index_path, self.state.archive
        if path is None or archive is None:
            return
        from rsgui.services.index_update import update_index_job

        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.update_button.setEnabled(False)
        self.build_button.setEnabled(False)
        self.show_message(f"Updating {path.name} for the changed tiles…")
        self.build_task = self.state.tasks.start(
            update_index_job, path, archive, name="Update index", key="build-index",
            on_progress=self._build_progress, on_returned=self._build_done,
            on_error=self._build_failed, on_cancelled=lambda: self.show_message("Update cancelled."),
            on_finished=self._update_finished,
        )  # fmt: skip

    def _update_finished(self) -> None:
        self.update_button.setEnabled(True)
        self._build_finished()

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

        job, args = spectral_index_job, (archive, bits)
        cluster = self.cluster_edit.text().strip()
        if cluster:  # a sharded index folder, encoded on a Dask cluster
            from rsgui.services.distributed import cluster_spectral_index_job

            job, args = cluster_spectral_index_job, (archive, bits, cluster)
        self.build_task = self.state.tasks.start(
            job, *args, name="Build spectral index", key="build-index",
            on_progress=self._build_progress, on_returned=self._build_done,
            on_error=self._build_failed, on_cancelled=lambda: self.show_message("Index building cancelled."),
            on_finished=self._build_finished,
        )  # fmt: skip

    def _build_progress(self, p) -> None:
        if p.total:
            self.progress.setRange(0, int(p.total))
            self.progress.setValue(int(p.done))
        note = p.note or "working"
        if p.rate and p.values.get("workers"):  # on a cluster: tiles/s, workers, ETA
            eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None else ""
            note = f"{p.rate:,.0f} tiles/s on {int(p.values['workers'])} workers{eta}"
        self.progress.setFormat(f"{note} %p%")

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
        encoder = self.encoders.get(id(index))
        session = self.state.session
        self._hide_banner()
        area = self._searched_area = self.search_area()
        if session.refined_by:  # an accepted refinement goes on ranking, refitted with each mark
            self._search_set(index, session, encoder, session.refined_by, accepted=True)
            return
        if session.is_set:
            self._search_set(index, session, encoder)
            return
        where = f"{len(index)} tiles"
        if area is not None:
            where = (
                f"the {self.map_model.area_count or 0:,} of {len(index):,} tiles in the map area"
            )
        self.show_message(f"Searching {where} with {ref.name}…")
        from rsgui.services.search import search

        self.search_task = self.state.tasks.start(
            search, index, ref, self.state.k, archive=self.state.archive, encoder=encoder,
            index_path=self.state.index_path, area=area, name="Search", key="search",
            on_returned=self._search_done, on_error=self._search_failed,
        )  # fmt: skip

    def _set_filters(self, session: SearchSession):
        """The session's filters with the map's area added (a box meeting both)."""
        area = self.search_area()
        if area is None:
            return session.filters
        from dataclasses import replace

        from rsgui.services.feedback import Filters

        filters = session.filters or Filters()
        if filters.bbox is not None:
            w, s, e, n = filters.bbox
            box = (max(w, area[0]), max(s, area[1]), min(e, area[2]), min(n, area[3]))
            if box[0] > box[2] or box[1] > box[3]:  # they do not meet: nothing passes
                box = (area[0], area[1], area[0], area[1])
            area = box
        return replace(filters, bbox=area)

    def _search_set(
        self, index, session: SearchSession, encoder, refine: str | None = None, accepted=False
    ) -> None:
        from rsgui.services.feedback import search_set

        n_pos, n_neg = len(session.positives), len(session.negatives)
        what = f"{n_pos} example(s)" + (f" and {n_neg} not wanted" if n_neg else "")
        verb = f"Refining with {REFINE_LABELS[refine]} on" if refine else "Searching with"
        self.show_message(f"{verb} {what} in {len(index)} tiles…")
        self.search_task = self.state.tasks.start(
            search_set, index, list(session.positives), self.state.k,
            negatives=list(session.negatives), combine=session.combine, refine=refine,
            filters=self._set_filters(session), archive=self.state.archive, encoder=encoder,
            index_path=self.state.index_path, name="Refine" if refine else "Search", key="search",
            on_returned=self._refine_done if refine and not accepted else self._search_done,
            on_error=self._search_failed,
        )  # fmt: skip

    def _search_done(self, results: SearchResults) -> None:
        if self.state.index is not None:
            self.encoders[id(self.state.index)] = results.encoder
        self.state.set_results(results)
        if not results.rows and self._searched_area is not None:
            self.show_message(
                "No archive tile lies in the map area: zoom out, move the area, or switch the "
                "map's area filter off.",
                "warning",
            )
            return
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
        session = self.state.session
        before = None
        if res is not None and session.pending is res and session.base is not None:
            before = {
                (("a", r.archive_index) if r.archive_index is not None else ("f", r.path)): r.rank
                for r in session.base.rows
            }
        if res is not None:
            for r in res.rows:
                d = f"d={r.distance}" if res.kind == "binary" else f"1−cos={r.distance:.3f}"
                border = None if r.correct is None else (GREEN if r.correct else RED)
                key = ("a", r.archive_index) if r.archive_index is not None else ("f", r.path)
                mark = {1: "  ✓", -1: "  ✗"}.get(
                    self.state.session.mark_of(self._ref_of_row(r)), ""
                )
                if isinstance(r.distance, float) and res.kind == "binary":
                    d = f"s={r.distance:.1f}"  # a combined score with negatives
                was = ""
                if res.strategy.startswith("refined"):
                    d = ""  # a model's score: the rank says it
                    if before is not None:
                        old = before.get(key)
                        was = f"was #{old}" if old is not None else "new"
                items.append(
                    TileItem(
                        key=key, title=Path(r.path).name, subtitle=f"#{r.rank}   {d}{was}{mark}\n{r.label or '—'}",
                        archive_index=r.archive_index, path=r.path, border=border,
                        tooltip=f"{r.path}\nclass {r.label or '—'}\n{d}",
                        elide_prefix=r.label or "",  # the class line above already says it
                    )
                )  # fmt: skip
        self.model.set_items(items)
        has = bool(items)
        self.export_csv_button.setEnabled(has)
        self.export_geojson_button.setEnabled(has)
        self.summary.setText(self.summary_text())
        self._update_buttons()
        if self.map_model is not None and self.map_model.selected is not None:
            self._map_selected(self.map_model.selected)  # the tile chosen stays chosen

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
        name = res.query.name
        if len(res.examples) > 1 or res.negatives:
            name += f" and {len(res.examples) - 1} more"
            name += f", {len(res.negatives)} not wanted" if res.negatives else ""
        how = f" · {res.strategy}" if res.strategy else ""
        filt = f" · {res.filters}" if res.filters else ""
        return f"<b>{name}</b>{cls}: {prec} · {res.method}, {res.bits} bits{how}{filt}"

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
            ref = self._ref_of(current)
            if self.map_model is not None:
                self.map_model.select(ref.archive_index)
            if self.state.selected != ref:  # not again when the map or browser chose it
                self.state.select_tile(ref)

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
        menu.addAction("More like this", lambda: self.mark_selected(1, [index]))
        menu.addAction("Not wanted", lambda: self.mark_selected(-1, [index]))
        menu.addAction("Use as next query", lambda: self._result_as_query(index))
        menu.addAction("Show in viewer", lambda: self.state.select_tile(self._ref_of(index)))
        chip = menu.addAction("Export as GeoTIFF chip…", lambda: self.chip_dialog(index))
        chip.setEnabled(index.data(IndexRole) is not None and self.state.archive is not None)
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def chip_dialog(self, index: QModelIndex) -> None:
        aidx = index.data(IndexRole)
        if aidx is None or self.state.archive is None:
            return
        name = self.state.archive.records[aidx].path.replace("/", "_").replace("#", "_")
        default = str(Path.home() / f"{Path(name).stem}.tif")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export GeoTIFF chip", default, "GeoTIFF (*.tif)"
        )
        if path:
            self.export_chip(aidx, path)

    def export_chip(self, archive_index: int, path: str | Path) -> Path | None:
        """The tile's file values as a georeferenced GeoTIFF (a scene window becomes a file)."""
        from rsgui.errors import RsguiError
        from rsgui.services.chips import export_chip

        try:
            out = export_chip(self.state.archive, archive_index, path)
        except (RsguiError, ValueError) as exc:
            self.show_message(str(exc), "error")
            return None
        except OSError as exc:
            self.show_message(f"{path}: cannot write the chip ({exc.strerror or exc})", "error")
            return None
        self.state.notify(f"GeoTIFF chip written: {out}")
        return out

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
        from rsgui.errors import RsguiError
        from rsgui.services.search import export_results

        try:
            out = export_results(res, path, self.state.archive)
        except RsguiError as exc:  # an index, a model, a tile or an archive file is in the way
            self.show_message(str(exc), "error")
            return None
        except OSError as exc:
            self.show_message(f"{path}: cannot write the export ({exc.strerror or exc})", "error")
            return None
        self.state.notify(f"Results exported: {out}")
        return out

    # --- examples, marks, refinement, filters, saved searches -----------------------------------
    def _ref_of_row(self, r) -> TileRef:
        return TileRef(Path(r.path), r.archive_index)

    def _session_changed(self) -> None:
        session = self.state.session
        items = []
        for refs, mark in ((session.positives, 1), (session.negatives, -1)):
            for i, ref in enumerate(refs):
                label = None
                if ref.archive_index is not None and self.state.archive is not None:
                    label = self.state.archive.records[ref.archive_index].label
                role = "query" if mark > 0 and i == 0 else ("wanted" if mark > 0 else "not wanted")
                key = (
                    ("a", ref.archive_index)
                    if ref.archive_index is not None
                    else ("f", str(ref.path))
                )
                items.append(
                    TileItem(
                        key=key, title=ref.name, subtitle=f"{'✓' if mark > 0 else '✗'} {role}",
                        archive_index=ref.archive_index, path=str(ref.path),
                        border=GREEN if mark > 0 else RED,
                        tooltip=f"{ref.path}\nclass {label or '—'}\n{role} (right-click to remove)",
                    )
                )  # fmt: skip
        self.examples_model.set_items(items)
        self.examples_view.setVisible(len(items) > 1)
        n_pos, n_neg = len(session.positives), len(session.negatives)
        if n_pos:
            text = f"Examples: {n_pos} wanted" + (f", {n_neg} not wanted" if n_neg else "")
            if n_pos == 1 and not n_neg:
                text += " — drop more tiles or use “More like this” to search with several"
        else:
            text = "Examples: none yet"
        self.examples_label.setText(text)
        i = self.combine_combo.findData(session.combine)
        if i >= 0:
            self.combine_combo.setCurrentIndex(i)
        self.search_button.setText(f"Search ({n_pos + n_neg})" if n_pos + n_neg > 1 else "Search")
        self._update_buttons()

    def _update_buttons(self) -> None:
        session = self.state.session
        has_results = self.model.rowCount() > 0
        selected = bool(self.view.selectionModel().selectedIndexes()) if has_results else False
        self.more_button.setEnabled(selected)
        self.not_button.setEnabled(selected)
        marks = len(session.positives) + len(session.negatives) > 1
        self.refine_button.setEnabled(
            bool(session.positives) and marks and self.state.index is not None
        )
        self.save_search_button.setEnabled(
            bool(session.positives) and self.state.index_path is not None
        )

    def selected_refs(self) -> list[TileRef]:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        return [self._ref_of(self.model.index(r)) for r in rows]

    def mark_selected(self, mark: int, indexes=None) -> None:
        """The selected results (or ``indexes``) as wanted (+1) or not-wanted (-1) examples."""
        refs = [self._ref_of(i) for i in indexes] if indexes else self.selected_refs()
        if not refs:
            self.show_message("Select one or more results first.", "warning")
            return
        self.add_examples(refs, mark)

    def remove_example(self, ref: TileRef) -> None:
        session = self.state.session
        session.remove(ref)
        session.pending = session.base = None
        self.state.set_session(session)
        if session.positives:
            self.search()
        else:
            self.state.set_query(None)
            self.state.set_results(None)

    def clear_examples(self) -> None:
        """Start over: no examples, no marks, no results (filters stay)."""
        self.state.set_query(None)
        self.state.set_results(None)
        self._hide_banner()

    def _warm_refine(self) -> None:
        """Load scikit-learn in a worker once marks exist, so the first Refine is quick."""
        if getattr(self, "_refine_warm", False):
            return
        self._refine_warm = True
        from rsgui.services.feedback import warm_up

        self.state.tasks.start(warm_up, name="Prepare refining", key="warm-refine")

    def _examples_menu(self, pos: QPoint) -> None:
        index = self.examples_view.indexAt(pos)
        if not index.isValid():
            return
        ref = self._ref_of(index)
        menu = QMenu(self)
        menu.addAction("Remove from the examples", lambda: self.remove_example(ref))
        menu.addAction("Show in viewer", lambda: self.state.select_tile(ref))
        menu.exec(self.examples_view.viewport().mapToGlobal(pos))

    def _combine_changed(self) -> None:
        session = self.state.session
        session.combine = str(self.combine_combo.currentData())
        self.state.set_session(session)
        if session.positives and self.state.index is not None:
            self.search()

    def refine(self) -> None:
        """Re-rank with a linear model fitted on the marks; shown until accepted or undone."""
        session, index = self.state.session, self.state.index
        if index is None or not session.positives:
            self.show_message("Search first, then mark results and refine.", "warning")
            return
        self._search_set(
            index, session, self.encoders.get(id(index)), str(self.refine_combo.currentData())
        )

    def _refine_done(self, results: SearchResults) -> None:
        session = self.state.session
        session.base = self.state.results
        session.pending = results
        self.state.set_results(results)
        model = REFINE_LABELS[str(self.refine_combo.currentData())]
        moved = 0
        if session.base is not None:
            old = [r.path for r in session.base.rows]
            moved = sum(r.path not in old for r in results.rows)
        self.banner_label.setText(
            f"<b>Refined ranking</b> by {model} on {len(session.positives)} wanted and "
            f"{len(session.negatives)} not-wanted tiles: {moved} of {len(results.rows)} results are "
            "new. Accept it, or undo to return to the previous ranking."
        )
        self.banner.setVisible(True)
        self.show_message(f"Refined in {results.elapsed_s * 1000:.0f} ms.")

    def accept_refined(self) -> None:
        session = self.state.session
        if session.pending is None:
            return
        session.refined_by = str(self.refine_combo.currentData())
        session.pending = session.base = None
        self._hide_banner()
        self._results_changed()
        self.show_message("Refined ranking accepted.")

    def undo_refined(self) -> None:
        session = self.state.session
        if session.pending is None:
            return
        base = session.base
        session.pending = session.base = None
        session.refined_by = None
        self._hide_banner()
        self.state.set_results(base)
        self.show_message("Back to the ranking before refining.")

    def _hide_banner(self) -> None:
        self.banner.setVisible(False)

    @property
    def refined_pending(self) -> bool:
        return self.state.session.pending is not None

    # filters
    def _fill_filters(self) -> None:
        index = self.state.index
        self.class_menu.clear()
        self.scene_combo.clear()
        self.date_combo.clear()
        if index is None:
            for w in (self.class_button, self.bbox_edit, self.scene_combo, self.date_combo):
                w.setVisible(False)
            return
        from rsgui.services.feedback import available_filters

        avail = available_filters(index, self.state.archive)
        for c in avail["classes"]:
            a = self.class_menu.addAction(c)
            a.setCheckable(True)
        self.class_button.setVisible(bool(avail["classes"]))
        self.bbox_edit.setVisible(bool(avail["area"]))
        self.scene_combo.addItem("all scenes", None)
        for sc in avail["scenes"]:
            self.scene_combo.addItem(sc, sc)
        self.date_combo.addItem("all dates", None)
        for d in avail["dates"]:
            self.date_combo.addItem(d, d)
        self.scene_combo.setVisible(bool(avail["scenes"]))
        self.date_combo.setVisible(bool(avail["dates"]))
        self._show_filters(self.state.session.filters)
        try:  # what this index cannot filter on (another archive's classes) is dropped
            kept = self.current_filters()
        except ValueError:
            kept = None
        self.state.session.filters = None if kept is None or kept.empty else kept

    def _show_filters(self, filters) -> None:
        wanted = set(filters.classes) if filters is not None else set()
        for a in self.class_menu.actions():
            a.setChecked(a.text() in wanted)
        self.class_button.setText(
            f"Classes: {', '.join(sorted(wanted))}" if wanted else "Classes: all"
        )
        bbox = filters.bbox if filters is not None else None
        self.bbox_edit.setText(",".join(f"{v:g}" for v in bbox) if bbox else "")
        for combo, values in ((self.scene_combo, filters.scenes if filters else ()),
                              (self.date_combo, filters.dates if filters else ())):  # fmt: skip
            i = combo.findData(values[0]) if values else 0
            combo.setCurrentIndex(max(0, i))

    def current_filters(self):
        """The filters as the widgets show them; a malformed area raises ValueError."""
        from rsgui.services.feedback import Filters, parse_bbox

        classes = tuple(a.text() for a in self.class_menu.actions() if a.isChecked())
        text = self.bbox_edit.text().strip() if self.bbox_edit.isVisible() else ""
        bbox = parse_bbox(text) if text else None
        scene = self.scene_combo.currentData() if self.scene_combo.isVisible() else None
        date = self.date_combo.currentData() if self.date_combo.isVisible() else None
        return Filters(classes, bbox, (scene,) if scene else (), (date,) if date else ())

    def _filters_changed(self) -> None:
        try:
            filters = self.current_filters()
        except ValueError as exc:
            self.show_message(f"Area filter: {exc}", "error")
            return
        session = self.state.session
        if filters == (session.filters or type(filters)()):
            self._show_filters(filters)
            return
        session.filters = None if filters.empty else filters
        session.pending = session.base = None
        self._show_filters(filters)
        self.state.set_session(session)
        if session.positives and self.state.index is not None:
            self.search()

    def set_filters(self, filters) -> None:
        """Apply ``filters`` (a :class:`rsgui.services.feedback.Filters`) as if chosen in the panel."""
        self._show_filters(filters)
        self._filters_changed()

    # saved searches
    def saved_search(self):
        from rsgui.services.feedback import SavedSearch

        session = self.state.session
        from rsgui.services.feedback import Filters

        return SavedSearch(
            index=str(self.state.index_path) if self.state.index_path else None,
            archive=str(self.state.archive_root) if self.state.archive_root else None,
            positives=[str(r.path) for r in session.positives],
            negatives=[str(r.path) for r in session.negatives], combine=session.combine,
            refine=session.refined_by, filters=session.filters or Filters(), k=self.state.k,
        )  # fmt: skip

    def save_search(self, path: str | Path) -> Path | None:
        try:
            out = self.saved_search().save(path)
        except OSError as exc:
            self.show_message(f"{path}: cannot save the search ({exc.strerror or exc})", "error")
            return None
        self.state.notify(f"Search saved: {out}")
        return out

    def open_search(self, path: str | Path) -> bool:
        """Reopen a saved search: its index, examples, marks and filters, then search (and
        refine again when the saved search was refined)."""
        from rsgui.errors import SavedSearchError
        from rsgui.services.feedback import SavedSearch

        try:
            saved = SavedSearch.load(path)
        except SavedSearchError as exc:
            self.show_message(str(exc), "error")
            return False
        if saved.index and (self.state.index_path is None
                            or Path(saved.index).with_suffix(".npz") != self.state.index_path):  # fmt: skip
            if not self.load_index(Path(saved.index)):
                return False
        archive = self.state.archive

        def ref(p: str) -> TileRef:
            return TileRef(Path(p), archive.find(p) if archive is not None else None)

        missing = [p for p in saved.positives + saved.negatives if not Path(p).is_file()]
        if missing:
            self.show_message(f"{path}: example {missing[0]} is not there any more", "error")
            return False
        session = SearchSession(
            positives=[ref(p) for p in saved.positives],
            negatives=[ref(p) for p in saved.negatives],
            combine=saved.combine, filters=None if saved.filters.empty else saved.filters,
        )  # fmt: skip
        self.k_spin.setValue(min(saved.k, self.k_spin.maximum()))
        self.state.set_session(session)
        self._show_filters(saved.filters)
        self._show_query_preview()
        self._query_title()
        if saved.refine:
            i = self.refine_combo.findData(saved.refine)
            self.refine_combo.setCurrentIndex(max(0, i))
            session.refined_by = saved.refine
            self._search_set(self.state.index, session, None, saved.refine, accepted=True)
        else:
            self.search()
        return True

    def _query_title(self) -> None:
        ref = self.state.query
        if ref is not None:
            self.query_title.setText(
                f"<b>{ref.name}</b><br><span style='color:gray'>{ref.path.parent}</span>"
            )

    def save_search_dialog(self) -> None:
        default = str(Path.home() / "search.rsgui-search.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save search", default, "Saved search (*.json)")
        if path:
            self.save_search(path)

    def open_search_dialog(self) -> None:
        start = str(self.state.archive_root or Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a saved search", start, "Saved search (*.json)"
        )
        if path:
            self.open_search(path)
