"""Evaluation panel: how well do the indexes of a labelled archive retrieve their own classes?

Pick one or several indexes (checkable list), evaluate them in a worker (every tile a query,
leave-one-out, :func:`rsgui.services.evaluation.evaluation_job`), and compare: precision-recall
curves overlaid, MAP@k and P@N in a table, class-wise MAP as grouped horizontal bars (class names
on the axis). Indexes of a multi-label archive (BigEarthNet) add mean Jaccard@k and NDCG@k
columns, count a result relevant when it shares a label with the query, and plot per-label MAP.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from rsgui.app.panels.common import ErrorLabel, ShowsErrors, light_plot
from rsgui.errors import Cancelled
from rsgui.progress import Progress
from rsgui.services.evaluation import EvalSummary, evaluation_job

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")  # fmt: skip
PATH_ROLE = Qt.ItemDataRole.UserRole


def parse_ints(text: str, what: str) -> tuple[int, ...]:
    """``"20, 100"`` -> (20, 100); a clear message for anything else."""
    try:
        values = tuple(int(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{what}: write whole numbers separated by commas, e.g. 20, 100") from None
    if not values or min(values) < 1:
        raise ValueError(f"{what}: at least one positive number is needed")
    return tuple(dict.fromkeys(values))


class EvaluationPanel(ShowsErrors, QWidget):
    """Checkable index list and settings on the left, the three views of the results right."""

    evaluated = Signal(object)  # list[EvalSummary]

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.task = None
        self.results: list[EvalSummary] = []
        self._extra: list[Path] = []  # index files added by hand
        self._build()
        state.indexesChanged.connect(self.refresh_indexes)
        state.archiveChanged.connect(self._archive_changed)
        self._archive_changed()

    # --- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.index_list = QListWidget()
        self.index_list.itemChanged.connect(lambda _i: self._update_buttons())
        add = QPushButton("Add index file…")
        add.clicked.connect(self._browse_index)
        self.k_edit = QLineEdit("20, 100")
        self.k_edit.setToolTip("MAP@k: the first k results of every query")
        self.n_edit = QLineEdit("10, 20")
        self.n_edit.setToolTip("P@N: share of the first N results in the query's class")
        form = QFormLayout()
        form.addRow("MAP@k, k =", self.k_edit)
        form.addRow("P@N, N =", self.n_edit)
        self.run_btn = QPushButton("Evaluate")
        self.run_btn.clicked.connect(self.evaluate)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_btn)
        buttons.addWidget(self.cancel_btn)
        self.export_btn = QPushButton("Save report…")
        self.export_btn.setToolTip("Markdown report and precision-recall points (CSV) per index")
        self.export_btn.clicked.connect(self._export)

        left = QGroupBox("Indexes")
        ll = QVBoxLayout(left)
        ll.addWidget(self.index_list, 1)
        ll.addWidget(add)
        ll.addLayout(form)
        ll.addLayout(buttons)
        ll.addWidget(self.export_btn)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        ll.addWidget(self.hint)

        self.progress = QProgressBar()
        self.status = QLabel("Choose indexes and press Evaluate.")
        self.error = ErrorLabel()

        self.pr_plot = light_plot("Precision–recall", "recall", "precision")
        self.pr_plot.setXRange(0, 1, padding=0.02)
        self.pr_plot.setYRange(0, 1, padding=0.02)
        self.pr_legend = self.pr_plot.addLegend(offset=(10, -10), labelTextColor="k")
        self.pr_legend.setVisible(False)  # shown with the first curve

        self.table_model = QStandardItemModel(0, 0, self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()

        self.class_k = QComboBox()
        self.class_k.currentIndexChanged.connect(self._draw_classwise)
        self.class_plot = pg.PlotWidget(title="Class-wise MAP")
        self.class_plot.setBackground("w")
        self.class_plot.showGrid(x=True, y=False, alpha=0.3)
        self.class_plot.setLabel("bottom", "MAP")
        self.class_plot.setXRange(0, 1, padding=0.02)
        self.class_plot.getViewBox().setMouseEnabled(x=False, y=False)
        self.class_plot.getViewBox().invertY(True)  # first class on top, like the table
        class_box = QWidget()
        cl = QVBoxLayout(class_box)
        cl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Class-wise MAP at k ="))
        row.addWidget(self.class_k)
        row.addStretch(1)
        cl.addLayout(row)
        cl.addWidget(self.class_plot, 1)

        views = QSplitter(Qt.Orientation.Vertical)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.pr_plot)
        top.addWidget(class_box)
        top.setStretchFactor(0, 1)
        top.setStretchFactor(1, 1)
        views.addWidget(top)
        views.addWidget(self.table)
        views.setSizes([420, 160])

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.progress)
        rl.addWidget(self.status)
        rl.addWidget(self.error)
        rl.addWidget(views, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([240, 980])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self._update_buttons()

    # --- index list ----------------------------------------------------------------------
    def _archive_changed(self) -> None:
        self._extra = []
        self.refresh_indexes()

    def refresh_indexes(self) -> None:
        """List the state's indexes plus those added by hand, keeping the check marks."""
        checked = set(self.checked_paths())
        first = self.index_list.count() == 0
        self.index_list.blockSignals(True)
        self.index_list.clear()
        seen: set[Path] = set()
        entries = [(e.path, e.title) for e in getattr(self.state, "indexes", [])]
        entries += [(p, p.name) for p in self._extra]
        for path, title in entries:
            path = Path(path)
            if path in seen:
                continue
            seen.add(path)
            item = QListWidgetItem(Path(path).stem)
            item.setToolTip(f"{title}\n{path}")
            item.setData(PATH_ROLE, str(path))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = path in checked or (first and not checked)
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.index_list.addItem(item)
        self.index_list.blockSignals(False)
        self._update_buttons()

    def add_index(self, path: str | Path, checked: bool = True) -> None:
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        if path not in self._extra:
            self._extra.append(path)
        self.refresh_indexes()
        self.set_checked(path, checked)

    def _browse_index(self) -> None:
        start = str(self.state.archive_root or Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Add index", start, "Index (*.npz)")
        if path:
            self.add_index(path)

    def index_paths(self) -> list[Path]:
        return [
            Path(self.index_list.item(i).data(PATH_ROLE)) for i in range(self.index_list.count())
        ]

    def checked_paths(self) -> list[Path]:
        out = []
        for i in range(self.index_list.count()):
            item = self.index_list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(Path(item.data(PATH_ROLE)))
        return out

    def set_checked(self, path: str | Path, checked: bool) -> None:
        for i in range(self.index_list.count()):
            item = self.index_list.item(i)
            if Path(item.data(PATH_ROLE)) == Path(path).with_suffix(".npz"):
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    # --- run -----------------------------------------------------------------------------
    def evaluate(self) -> None:
        paths = self.checked_paths()
        if not paths:
            self.show_error("Tick at least one index to evaluate.")
            return
        try:
            ks = parse_ints(self.k_edit.text(), "MAP@k")
            ns = parse_ints(self.n_edit.text(), "P@N")
        except ValueError as e:
            self.show_error(str(e))
            return
        self.clear_error()
        self.progress.setRange(0, 0)
        self.status.setText(f"Evaluating {len(paths)} index(es)…")
        self.task = self.state.tasks.start(
            evaluation_job, paths, ks, ns, name="Evaluate indexes", key="evaluation-panel",
            on_progress=self._on_progress, on_returned=self._show, on_error=self._failed,
            on_cancelled=self._cancelled, on_finished=self._ended,
        )  # fmt: skip
        self._update_buttons()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _on_progress(self, p: Progress) -> None:
        if p.note:
            self.status.setText(p.note)
        if p.total:
            self.progress.setRange(0, int(p.total))
            self.progress.setValue(int(p.done))

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self._cancelled()
            return
        self.show_error(str(exc))
        self.status.setText("Evaluation failed.")

    def _cancelled(self) -> None:
        self.status.setText("Evaluation cancelled.")

    def _ended(self) -> None:
        self.task = None
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if self.results else 0)
        self._update_buttons()

    # --- results -------------------------------------------------------------------------
    def _show(self, results: list[EvalSummary]) -> None:
        self.set_results(results)
        if results:
            e = results[0].evaluation
            how = f" · relevant = {e.relevance}" if e.multilabel else ""
            self.status.setText(
                f"{len(results)} index(es) evaluated · {e.n_queries} queries, each against the "
                f"other {e.n_database} tiles{how}"
            )
        self.evaluated.emit(results)

    def set_results(self, results: list[EvalSummary]) -> None:
        self.results = list(results)
        self._draw_pr()
        self._fill_table()
        ks = sorted({k for r in self.results for k in r.evaluation.k})
        current = self.class_k.currentData()
        self.class_k.blockSignals(True)
        self.class_k.clear()
        for k in ks:
            self.class_k.addItem(str(k), k)
        if current in ks:
            self.class_k.setCurrentIndex(ks.index(current))
        self.class_k.blockSignals(False)
        self._draw_classwise()
        self._update_buttons()

    def _draw_pr(self) -> None:
        self.pr_plot.clear()  # removes the curves and their legend entries
        self.pr_legend.clear()
        for i, r in enumerate(self.results):
            e = r.evaluation
            colour = COLOURS[i % len(COLOURS)]
            self.pr_plot.plot(np.asarray(e.pr_recall), np.asarray(e.pr_precision),
                              pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=4,
                              symbolBrush=colour, symbolPen=None, name=r.name)  # fmt: skip
        self.pr_legend.setVisible(bool(self.results))  # no empty legend box before a run

    def pr_curves(self) -> list[pg.PlotDataItem]:
        return list(self.pr_plot.getPlotItem().listDataItems())

    def legend_labels(self) -> list[str]:
        return [label.text for _sample, label in self.pr_legend.items]

    def _fill_table(self) -> None:
        ks = sorted({k for r in self.results for k in r.evaluation.k})
        ns = sorted({n for r in self.results for n in r.evaluation.n})
        headers = ["Index", "Method", "Bits", "Queries"]
        headers += [f"MAP@{k}" for k in ks] + [f"P@{n}" for n in ns]
        multi = any(r.evaluation.multilabel for r in self.results)
        if multi:  # graded figures of label sets; blank for a single-label index beside them
            headers += [f"Jaccard@{k}" for k in ks] + [f"NDCG@{k}" for k in ks]
        self.table_model.clear()
        self.table_model.setHorizontalHeaderLabels(headers)
        for r in self.results:
            e = r.evaluation
            row = [r.name, e.method, str(e.bits), str(e.n_queries)]
            row += [_fmt(e.map_retrieved.get(k)) for k in ks]
            row += [_fmt(e.precision.get(n)) for n in ns]
            if multi:
                row += [_fmt(e.mean_jaccard.get(k)) for k in ks]
                row += [_fmt(e.ndcg.get(k)) for k in ks]
            items = [QStandardItem(text) for text in row]
            items[0].setToolTip(f"{r.path}\nrelevant = {e.relevance}")
            for item in items[2:]:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table_model.appendRow(items)

    def table_value(self, row: int, header: str) -> str:
        for col in range(self.table_model.columnCount()):
            if self.table_model.horizontalHeaderItem(col).text() == header:
                return self.table_model.item(row, col).text()
        raise KeyError(header)

    def _draw_classwise(self) -> None:
        self.class_plot.clear()
        k = self.class_k.currentData()
        if k is None or not self.results:
            self.class_plot.getAxis("left").setTicks(None)
            return
        classes = sorted({c for r in self.results for c in r.evaluation.classwise.get(k, {})})
        n = len(self.results)
        height = 0.8 / max(1, n)
        pos = np.arange(len(classes), dtype=float)
        self.bars: list[pg.BarGraphItem] = []
        for i, r in enumerate(self.results):
            values = [r.evaluation.classwise.get(k, {}).get(c, 0.0) for c in classes]
            colour = COLOURS[i % len(COLOURS)]
            # horizontal bars: long class names stay readable on the vertical axis
            y = pos - 0.4 + height * (i + 0.5)
            bar = pg.BarGraphItem(x0=0, y=y, width=values, height=height * 0.9,
                                  brush=colour, pen=pg.mkPen(colour))  # fmt: skip
            bar.setToolTip(r.label)
            self.class_plot.addItem(bar)
            self.bars.append(bar)
        self.class_plot.getAxis("left").setTicks(
            [[(float(p), c) for p, c in zip(pos, classes, strict=True)]]
        )
        self.class_plot.setYRange(-0.6, len(classes) - 0.4, padding=0)
        self.class_plot.setXRange(0, 1, padding=0.02)
        multi = any(r.evaluation.multilabel for r in self.results)
        self.class_plot.setTitle(f"Per-label MAP@{k}" if multi else f"Class-wise MAP@{k}")
        self.class_names = classes

    # --- export --------------------------------------------------------------------------
    def _export(self) -> None:
        if not self.results:
            return
        folder = QFileDialog.getExistingDirectory(self, "Save the evaluation report in")
        if folder:
            self.save_report(folder)

    def save_report(self, folder: str | Path) -> list[Path]:
        """``NAME.evaluation.md`` and ``NAME.pr.csv`` per evaluated index, written atomically."""
        from rsgui.atomic import atomic_write_text

        folder = Path(folder)
        written = []
        for r in self.results:
            md = folder / f"{r.name}.evaluation.md"
            atomic_write_text(md, r.evaluation.to_markdown())
            written += [md, r.evaluation.write_pr_csv(folder / f"{r.name}.pr.csv")]
        self.status.setText(f"Report saved in {folder}")
        return written

    # --- helpers -------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        running = self.task is not None
        self.run_btn.setEnabled(not running and bool(self.checked_paths()))
        self.cancel_btn.setEnabled(running)
        self.export_btn.setEnabled(bool(self.results) and not running)
        archive = getattr(self.state, "archive", None)
        multilabel = getattr(archive, "label_sets", None) is not None
        if archive is not None and not multilabel and not getattr(archive, "classes", ()):
            self.hint.setText("This archive has no class folders: indexes of it cannot be "
                              "evaluated (retrieval quality needs labels).")  # fmt: skip
        elif self.index_list.count() == 0:
            self.hint.setText("No index yet: build one in the Training panel (or add a file).")
        else:
            self.hint.setText("")

    def wait(self, timeout_s: float = 60.0) -> bool:
        from rsgui.app.workers import wait_until

        return wait_until(lambda: self.task is None, timeout_s)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        self.cancel()
        self.wait(timeout_s)


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"
