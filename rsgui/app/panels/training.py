"""Training panel: choose a method and its settings, run it in a worker, watch it learn.

The run itself is :func:`rsgui.services.training.train_job`, a plain generator yielding
:class:`~rsgui.progress.Progress` (stage ``train``: one per step, the losses and ``"map"`` in
``values``; other stages: reading tiles, features, similarity, encoding). A superqt worker runs
it: pause holds it between two steps, cancel closes it after the current step, and the trainer
writes its checkpoint as it stops, so a cancelled run can be resumed or indexed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
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
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from rsgui.app.devices import list_devices
from rsgui.app.panels.common import ErrorLabel, ShowsErrors, light_plot, show_empty
from rsgui.encoders.registry import METHODS, MethodSpec
from rsgui.progress import EtaClock, Progress
from rsgui.services.training import (
    CheckpointInfo,
    TrainingResult,
    list_checkpoints,
    output_path,
    train_job,
)

BITS = (16, 32, 48, 64, 128)
CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                 "#17becf", "#7f7f7f", "#bcbd22")  # fmt: skip


def format_eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def models_dir(archive_root: Path | None) -> Path:
    """Default folder for the checkpoints of an archive: beside its indexes, so inside the archive
    when it is writable and in the user cache when it is read-only."""
    if archive_root is None:
        from rsgui.app.settings import user_data_dir

        return user_data_dir() / "models"
    from rsgui.index_store import writable_index_dir

    return writable_index_dir(Path(archive_root)).parent / "models"


class TrainingPanel(ShowsErrors, QWidget):
    """Settings, controls, live curves and the checkpoints of the run's folder."""

    runFinished = Signal(object)  # TrainingResult

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.task = None
        self.index_task = None
        self.result: TrainingResult | None = None
        self._run: tuple[MethodSpec, Path] | None = None  # what the running job writes
        self._pausing = False
        self._stopping = False
        self._eta = EtaClock()  # counts without a rate (tiles, features, similarity) get an ETA
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._map_points: tuple[list[float], list[float]] = ([], [])
        self._map_drawn = 0
        self._dirty = False
        self._last_step = 0
        self._out_edited = False
        self.extra_options: dict = {}  # method extras a script or the demo may add
        self._build()
        # a redraw of both plots costs 20-35 ms of the event loop (software painting of the axes
        # and grids): twice a second keeps the curves live without stalling the window
        self._redraw_timer = QTimer(self, interval=500)
        self._redraw_timer.timeout.connect(self._redraw)
        self._ckpt_timer = QTimer(self, interval=2000)
        self._ckpt_timer.timeout.connect(self.refresh_checkpoints)
        state.archiveChanged.connect(self._archive_changed)
        state.deviceChanged.connect(self._state_device)
        self.device.currentIndexChanged.connect(
            lambda _i: self.state.set_device(self.device.currentData())
        )
        self._method_changed()
        self._archive_changed()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not getattr(self, "_warmed", False):  # first shown: load the training code in a worker
            self._warmed = True
            from rsgui.services.training import warm_up

            self.state.tasks.start(warm_up, name="Prepare training", key="warm-training")

    # --- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.method = QComboBox()
        for spec in METHODS.values():
            self.method.addItem(spec.label, spec.key)
        self.bands = QComboBox()
        self.bits = QComboBox()
        for b in BITS:
            self.bits.addItem(f"{b} bits", b)
        self.bits.setCurrentIndex(BITS.index(64))
        self.preset = QComboBox()
        self.preset.addItem("Quick (small network, minutes)", "quick")
        self.preset.addItem("CPU (sized for two cores: under an hour on 26,000 tiles)", "cpu")
        self.preset.addItem("Thesis settings (long; GPU advised)", "thesis")
        self.steps = QSpinBox(minimum=0, maximum=10_000_000, singleStep=100)
        self.steps.setSpecialValueText("as preset")
        self.batch = QSpinBox(minimum=0, maximum=4096)
        self.batch.setSpecialValueText("as preset")
        self.device = QComboBox()
        for dev in list_devices():
            self.device.addItem(dev.label, dev.id)
        self.out = QLineEdit()
        self.out.setPlaceholderText("checkpoint file (.safetensors)")
        self.out.textEdited.connect(lambda _t: setattr(self, "_out_edited", True))
        self.out.textChanged.connect(self.out.setToolTip)  # the field is narrow; show it all
        browse = QPushButton("…")
        browse.setToolTip("Choose where the model is written")
        browse.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)
        self.augment = QLineEdit()
        self.augment.setPlaceholderText(
            "optional: conditional GAN checkpoint adding generated tiles"
        )
        self.augment_label = QLabel("GAN tiles")

        form = QFormLayout()
        form.addRow("Method", self.method)
        form.addRow("Bands", self.bands)
        form.addRow("Code length", self.bits)
        form.addRow("Preset", self.preset)
        form.addRow("Steps", self.steps)
        form.addRow("Batch size", self.batch)
        form.addRow("Device", self.device)
        form.addRow("Output", out_row)
        form.addRow(self.augment_label, self.augment)

        self.start_btn = QPushButton("Start")
        self.pause_btn = QPushButton("Pause")
        self.cancel_btn = QPushButton("Cancel")
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.toggle_pause)
        self.cancel_btn.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.pause_btn, self.cancel_btn):
            buttons.addWidget(b)

        settings = QGroupBox("Run")
        sl = QVBoxLayout(settings)
        sl.addLayout(form)
        sl.addLayout(buttons)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid);")
        sl.addWidget(self.hint)
        sl.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.rate = QLabel("Not running")
        self.error = ErrorLabel()

        self.loss_plot = light_plot("Training losses", "step", "loss", counts=True, grid=False)
        self.loss_plot.addLegend(
            offset=(-10, 10), labelTextColor="k", brush=(255, 255, 255, 220), pen=(200, 200, 200)
        )
        self.loss_plot.setDownsampling(auto=True, mode="peak")
        self.loss_plot.setClipToView(True)
        self.loss_plot.enableAutoRange(False)  # see _fit_loss_range
        self.map_plot = light_plot(
            "Retrieval MAP during training", "step", "MAP", counts=True, grid=False
        )
        self.map_plot.setYRange(0, 1)
        self.map_curve = self.map_plot.plot([], [], pen=pg.mkPen("#2c3e50", width=2),
                                            symbol="o", symbolSize=6)  # fmt: skip
        self.map_note = pg.TextItem("no retrieval measure reported yet", color="#7f8c8d")
        self.map_plot.addItem(self.map_note)
        self.map_note.setPos(0, 0.5)
        show_empty(self.loss_plot, True)  # no steps, no losses yet: no invented scale
        show_empty(self.map_plot, True, ("bottom",))  # MAP is 0..1; the steps are not known yet

        self.checkpoints = QTableWidget(0, 3)
        self.checkpoints.setHorizontalHeaderLabels(["Checkpoint", "Method", "Step"])
        header = self.checkpoints.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.checkpoints.verticalHeader().hide()
        self.checkpoints.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.checkpoints.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.checkpoints.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.checkpoints.itemSelectionChanged.connect(self._checkpoint_selected)
        self.index_btn = QPushButton("Build index from selected model")
        self.index_btn.clicked.connect(self.build_index)
        self.resume_btn = QPushButton("Resume selected")
        self.resume_btn.setToolTip("Continue training from the selected checkpoint")
        self.resume_btn.clicked.connect(self.resume_selected)
        ck_buttons = QHBoxLayout()
        ck_buttons.addWidget(self.index_btn)
        ck_buttons.addWidget(self.resume_btn)
        ck_box = QGroupBox("Checkpoints in the output folder")
        cl = QVBoxLayout(ck_box)
        cl.addWidget(self.checkpoints)
        cl.addLayout(ck_buttons)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.progress)
        rl.addWidget(self.rate)
        rl.addWidget(self.error)
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.map_plot)
        plots.addWidget(ck_box)
        plots.setSizes([300, 160, 160])
        rl.addWidget(plots, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(settings)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([320, 700])
        layout = QVBoxLayout(self)
        layout.addWidget(split)

        self.method.currentIndexChanged.connect(self._method_changed)
        self.bands.currentIndexChanged.connect(self._default_out)
        self.bits.currentIndexChanged.connect(self._default_out)
        self._set_running(False)

    # --- settings ------------------------------------------------------------------------
    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.method.currentData()]

    def _method_changed(self) -> None:
        spec = self.spec
        self.bands.blockSignals(True)
        self.bands.clear()
        for name in spec.band_sets:
            self.bands.addItem(name, name)
        self.bands.setCurrentIndex(spec.band_sets.index(spec.default_bands))
        self.bands.blockSignals(False)
        self.bits.setEnabled(spec.uses_bits)
        trained = spec.family != "spectral"
        for w in (self.preset, self.steps, self.batch, self.device):
            w.setEnabled(trained)
        self.augment.setVisible(spec.family == "deephash")
        self.augment_label.setVisible(spec.family == "deephash")
        self._default_out()
        self._update_buttons()

    def _default_out(self) -> None:
        if self._out_edited:
            return
        spec = self.spec
        root = self._archive_root()
        bits = f"-{self.bits.currentData()}" if spec.uses_bits else ""
        name = f"{spec.key}-{self.bands.currentData()}{bits}"
        if spec.family == "spectral":
            folder = self._index_dir(root)
            self.out.setText(str(folder / f"{name}.npz"))
        else:
            self.out.setText(str(models_dir(root) / f"{name}.safetensors"))
        self.refresh_checkpoints()

    def _index_dir(self, root: Path | None) -> Path:
        if root is None:
            return models_dir(None)
        from rsgui.index_store import writable_index_dir

        return writable_index_dir(root)

    def _browse_out(self) -> None:
        spec = self.spec
        flt = "Index (*.npz)" if spec.family == "spectral" else "Model (*.safetensors)"
        path, _ = QFileDialog.getSaveFileName(self, "Output", self.out.text(), flt)
        if path:
            self.out.setText(path)
            self._out_edited = True
            self.refresh_checkpoints()

    def _archive_root(self) -> Path | None:
        archive = getattr(self.state, "archive", None)
        return None if archive is None else Path(archive.root)

    def _archive_changed(self) -> None:
        if not self.running:  # a running job keeps its output where it is
            self._out_edited = False
            self._default_out()
        self._state_device(getattr(self.state, "device", "cpu"))
        self._update_buttons()

    def _state_device(self, device: str) -> None:
        """Follow the application's device choice ("cuda" means the first CUDA device)."""
        i = self.device.findData(device)
        if i < 0 and device == "cuda":
            i = self.device.findData("cuda:0")
        if i >= 0 and i != self.device.currentIndex():
            self.device.setCurrentIndex(i)

    def settings(self) -> dict:
        """The run as the job takes it (also what a test or the screenshot driver can set)."""
        return {
            "method": self.spec.key,
            "bands": self.bands.currentData(),
            "bits": int(self.bits.currentData()),
            "preset": self.preset.currentData(),
            "steps": self.steps.value() or None,
            "batch_size": self.batch.value() or None,
            "device": self.device.currentData(),
            "out": self.out.text().strip(),
            "options": dict(self.extra_options)
            | (
                {"augment": self.augment.text().strip()}
                if self.spec.family == "deephash" and self.augment.text().strip()
                else {}
            ),
        }

    # --- run -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self, resume: str | Path | None = None) -> None:
        root = self._archive_root()
        if root is None:
            self.show_error("Open an archive first: training reads its tiles.")
            return
        s = self.settings()
        if not s["out"]:
            self.show_error("Choose an output file for the model.")
            return
        spec = self.spec
        if spec.needs_labels and not getattr(self.state.archive, "classes", ()):
            self.show_error(f"{spec.label} needs class labels; {root.name} has no class folders.")
            return
        self.clear_error()
        self._reset_curves()
        self._pausing = self._stopping = False
        self._last_step = 0
        self.result = None
        self.rate.setText(f"Starting {spec.label}…")
        self.progress.setRange(0, 0)
        opts = dict(s["options"])
        # ``resume or None``: the Start button's clicked(bool) passes False
        job = train_job(
            self.state.archive, s["method"], s["out"], bands=s["bands"], bits=s["bits"],
            steps=s["steps"], preset=s["preset"], device=s["device"], batch_size=s["batch_size"],
            resume=resume or None, augment=opts.get("augment") or None,
            n_generated=opts.get("n_generated"), variant=opts.get("variant"),
            model=opts.get("model"),
        )  # fmt: skip
        out = Path(s["out"]) if spec.family == "spectral" else output_path(s["out"])
        self._run = (spec, out)
        self._ckpt_timer.start()
        self._redraw_timer.start()
        self.task = self.state.tasks.start(
            job, name=f"Training {spec.label}", on_progress=self._on_progress,
            on_returned=self._finished, on_error=self._failed, on_cancelled=self._cancelled,
            on_paused=self._paused, on_resumed=self._resumed, on_finished=self._ended,
        )  # fmt: skip
        self._set_running(True)

    def toggle_pause(self) -> None:
        """Hold the run after the current step (the worker waits), or let it go on."""
        if not self.running or self._stopping:
            return
        if self._pausing:
            self._pausing = False
            self.task.resume()
            self.pause_btn.setText("Pause")
            self.rate.setText("Resuming…")
        else:
            self._pausing = True
            self.task.pause()
            self.pause_btn.setText("Resume")
            self.rate.setText("Pausing after this step…")

    @property
    def paused(self) -> bool:
        """Pause asked for (the run holds at its next step)."""
        return self._pausing

    def cancel(self) -> None:
        """Stop after the current step; the job writes its checkpoint before it ends."""
        if not self.running:
            return
        self._stopping = True
        self._pausing = False
        self.task.cancel()
        self.rate.setText("Stopping after this step, saving the checkpoint…")
        self.cancel_btn.setEnabled(False)
        self.pause_btn.setEnabled(False)

    def resume_selected(self) -> None:
        ck = self.selected_checkpoint()
        if ck is None or self.running:
            return
        if ck.method != self.spec.key:
            i = self.method.findData(ck.method)
            if i >= 0:
                self.method.setCurrentIndex(i)
        self.out.setText(str(ck.path))
        self._out_edited = True
        self.start(resume=ck.path)

    # --- events from the job -------------------------------------------------------------
    def _on_progress(self, p: Progress) -> None:
        p = self._eta(p)
        if p.stage == "train":
            self._progress(p)
        elif p.total:  # reading tiles, features, similarity, fitting, encoding
            step, total = int(p.done), int(p.total)
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            what = p.note or p.stage or "preparing"
            eta = f" · ETA {format_eta(p.eta_s)}" if p.eta_s is not None else ""
            self.progress.setFormat(f"{what}: {step} / {total}{eta}")
        elif p.note and not (self._pausing or self._stopping):
            self.rate.setText(p.note)

    def _paused(self) -> None:
        self.rate.setText(f"Paused at step {self._last_step} — Resume to continue")

    def _resumed(self) -> None:
        self.rate.setText(f"Resumed at step {self._last_step}")

    def _progress(self, p: Progress) -> None:
        """One training step: bar, rate, ETA and the points of the curves."""
        step, total = int(p.done), int(p.total or 0)
        self._last_step = step
        if total > 0:
            if self.progress.maximum() != total:
                self.map_plot.setXRange(0, total, padding=0.02)
                show_empty(self.map_plot, False, ("bottom",))
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            self.progress.setFormat(f"step {step} / {total}  (%p%)")
        ips = p.rate if p.rate is not None else math.nan
        eta = p.eta_s if p.eta_s is not None else math.nan
        if not (self._pausing or self._stopping):
            rate = f"{ips:.1f} images/s" if math.isfinite(ips) and ips > 0 else "– images/s"
            self.rate.setText(f"{rate} · ETA {format_eta(eta)}")
        for name, value in p.values.items():
            if name == "map":
                self._map_points[0].append(step)
                self._map_points[1].append(float(value))
                continue
            xs, ys = self._series.setdefault(name, ([], []))
            if math.isfinite(value):
                xs.append(step)
                ys.append(float(value))
        self._dirty = True

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for name, (xs, ys) in self._series.items():
            curve = self._curves.get(name)
            if curve is None:
                colour = CURVE_COLOURS[len(self._curves) % len(CURVE_COLOURS)]
                curve = self.loss_plot.plot([], [], pen=pg.mkPen(colour, width=1.5), name=name)
                self._curves[name] = curve
            curve.setData(xs, ys)
        self._fit_loss_range()
        show_empty(self.loss_plot, not self._series)
        if len(self._map_points[0]) != self._map_drawn:  # repaint the MAP plot only when it grew
            self._map_drawn = len(self._map_points[0])
            self.map_curve.setData(*self._map_points)
            self.map_note.hide()

    def _fit_loss_range(self) -> None:
        """Move the loss plot's view only when the curves leave it or fill a third of it: an
        unchanged view keeps the axes' drawing cached, so a redraw paints the curves alone."""
        ys = [v for _, vals in self._series.values() for v in vals[-2000:]]
        xs = [x for xs_, _ in self._series.values() for x in xs_[-1:]]
        if not ys:
            return
        lo, hi = min(ys), max(ys)
        span = (hi - lo) or max(abs(hi), 1e-3)
        (x0, x1), (y0, y1) = self.loss_plot.getViewBox().viewRange()
        if lo < y0 or hi > y1 or (y1 - y0) > 3 * span:
            self.loss_plot.setYRange(lo - 0.15 * span, hi + 0.15 * span, padding=0)
        total = self.progress.maximum() if self.progress.maximum() > 0 else max(xs)
        if max(xs) > x1 or x1 > 1.5 * max(total, 1):
            self.loss_plot.setXRange(0, max(total, max(xs)), padding=0.02)

    def _reset_curves(self) -> None:
        for curve in self._curves.values():
            self.loss_plot.removeItem(curve)
        legend = self.loss_plot.plotItem.legend
        if legend is not None:
            legend.clear()
        self._curves.clear()
        self._series.clear()
        self._map_points = ([], [])
        self._map_drawn = 0
        self.map_curve.setData([], [])
        self.map_note.setText("a generator: no retrieval measure" if self.spec.generator
                              else "no retrieval measure reported yet")  # fmt: skip
        self.map_note.show()
        show_empty(self.loss_plot, True)
        show_empty(self.map_plot, True, ("bottom",))
        self.loss_plot.setTitle("Training losses")
        self._dirty = False

    def _finished(self, result: TrainingResult) -> None:
        self.result = result
        self.rate.setText(f"Finished: {Path(result.path).name}")
        if result.is_index:
            self.state.notify(f"Index written: {result.path}", "info", result.path)
            self.state.refresh_indexes()
        self.runFinished.emit(result)

    def _cancelled(self) -> None:
        """The job was closed; a trainer has written the checkpoint of the steps it did."""
        if self._run is None:
            return
        spec, out = self._run
        self.result = TrainingResult(spec.key, out, is_index=spec.family == "spectral",
                                     cancelled=True, step=self._last_step)  # fmt: skip
        if spec.family == "spectral" or not out.is_file():
            what = (
                "nothing was written"
                if spec.family == "spectral"
                else "before the first checkpoint"
            )
            self.rate.setText(f"Cancelled at step {self._last_step}, {what}")
        else:
            self.rate.setText(f"Cancelled at step {self._last_step}; kept {out.name}")
        self.runFinished.emit(self.result)

    def _failed(self, exc: BaseException) -> None:
        self.show_error(f"Training stopped: {exc}")
        self.state.notify(f"Training failed: {exc}", "error")

    def _ended(self) -> None:
        self.task = None
        self._run = None
        self._pausing = self._stopping = False
        self._ckpt_timer.stop()
        self._redraw_timer.stop()
        self._dirty = True
        self._redraw()
        self._set_running(False)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        self.refresh_checkpoints()

    # --- checkpoints ---------------------------------------------------------------------
    def output_folder(self) -> Path | None:
        text = self.out.text().strip()
        return Path(text).parent if text else None

    def refresh_checkpoints(self) -> None:
        folder = self.output_folder()
        selected = self.selected_checkpoint()
        self._checkpoints = list_checkpoints(folder) if folder is not None else []
        self.checkpoints.setRowCount(len(self._checkpoints))
        for row, ck in enumerate(self._checkpoints):
            step = "" if ck.step is None else (
                f"{ck.step} / {ck.total}" if ck.total else str(ck.step)
            )  # fmt: skip
            label = METHODS[ck.method].label if ck.method in METHODS else ck.method
            for col, text in enumerate((ck.path.name, label, step)):
                item = QTableWidgetItem(text)
                item.setToolTip(str(ck.path))
                self.checkpoints.setItem(row, col, item)
            if selected is not None and ck.path == selected.path:
                self.checkpoints.selectRow(row)
        self._update_buttons()

    def _checkpoint_selected(self) -> None:
        self._update_buttons()
        ck = self.selected_checkpoint()
        if ck is not None and not self.running:
            self.show_history(ck.path)

    def show_history(self, path: Path) -> None:
        """Draw the curves a checkpoint recorded (its sidecar's history), for a finished or
        stopped run; a live run draws its own."""
        try:
            meta = json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        history = meta.get("history") or []
        maps = (meta.get("metrics") or {}).get("map_history") or []
        if not history and not maps:
            return
        self._reset_curves()
        for entry in history:
            if not isinstance(entry, dict) or "step" not in entry:
                continue
            for name, value in entry.items():
                if name != "step" and isinstance(value, int | float) and math.isfinite(value):
                    xs, ys = self._series.setdefault(name, ([], []))
                    xs.append(float(entry["step"]))
                    ys.append(float(value))
        for pair in maps:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                self._map_points[0].append(float(pair[0]))
                self._map_points[1].append(float(pair[1]))
        total = meta.get("total_steps") or (meta.get("training") or {}).get("steps")
        if total:
            self.map_plot.setXRange(0, float(total), padding=0.02)
            show_empty(self.map_plot, False, ("bottom",))
        self._dirty = True
        self._redraw()
        self.loss_plot.setTitle(f"Training losses — {Path(path).name}")

    def checkpoint_names(self) -> list[str]:
        return [ck.path.name for ck in getattr(self, "_checkpoints", [])]

    def selected_checkpoint(self) -> CheckpointInfo | None:
        rows = {i.row() for i in self.checkpoints.selectedIndexes()}
        cks = getattr(self, "_checkpoints", [])
        if len(rows) != 1:
            return None
        row = rows.pop()
        return cks[row] if row < len(cks) else None

    def select_checkpoint(self, name: str) -> bool:
        for row, ck in enumerate(getattr(self, "_checkpoints", [])):
            if ck.path.name == name:
                self.checkpoints.selectRow(row)
                return True
        return False

    def build_index(self) -> None:
        """Encode the open archive with the selected model and save the index (in a worker)."""
        ck = self.selected_checkpoint()
        root = self._archive_root()
        if ck is None or root is None:
            return
        spec = METHODS.get(ck.method)
        if spec is None or not spec.retrieval:
            self.show_error(f"{ck.path.name}: a {ck.method} model makes samples, not codes; "
                            "use it in the samples panel.")  # fmt: skip
            return
        out = self._index_dir(root) / f"{ck.path.stem}.npz"
        self.clear_error()
        self.index_btn.setEnabled(False)
        self.rate.setText(f"Indexing {root.name} with {ck.path.name}…")
        from rsgui.services.indexing import index_job

        self.index_task = self.state.tasks.start(
            index_job, self.state.archive, ck.method, out, model=ck.path, name="Build index",
            on_progress=self._on_progress, on_returned=self._indexed,
            on_error=self._index_failed, on_finished=self._index_ended,
        )  # fmt: skip

    def _indexed(self, result) -> None:  # a rsgui.services.indexing.IndexResult
        self.rate.setText(f"Index written: {result.path.name} ({result.n_tiles} tiles)")
        self.state.notify(f"Index written: {result.path}", "info", result.path)
        self.state.refresh_indexes()

    def _index_failed(self, exc: BaseException) -> None:
        self.show_error(f"Indexing failed: {exc}")

    def _index_ended(self) -> None:
        self.index_task = None
        self._update_buttons()

    # --- helpers -------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        for w in (self.method, self.bands, self.preset, self.steps, self.batch, self.device,
                  self.out, self.augment):  # fmt: skip
            w.setEnabled(not running)
        if not running:
            self._method_changed_enable_only()
        self.pause_btn.setText("Pause")
        self.pause_btn.setEnabled(running)
        self.cancel_btn.setEnabled(running)
        self._update_buttons()

    def _method_changed_enable_only(self) -> None:
        spec = self.spec
        self.bits.setEnabled(spec.uses_bits)
        trained = spec.family != "spectral"
        for w in (self.preset, self.steps, self.batch, self.device):
            w.setEnabled(trained)

    def _update_buttons(self) -> None:
        has_archive = self._archive_root() is not None
        self.start_btn.setEnabled(has_archive and not self.running)
        ck = self.selected_checkpoint()
        spec = METHODS.get(ck.method) if ck is not None else None
        idle = not self.running and self.index_task is None
        self.index_btn.setEnabled(bool(has_archive and spec and spec.retrieval and idle))
        self.resume_btn.setEnabled(
            bool(has_archive and spec and spec.family != "spectral" and idle)
        )
        if not has_archive:
            self.hint.setText("Open an archive to train on its tiles.")
        elif self.spec.family == "spectral":
            self.hint.setText("No training: the projection is fitted on the archive and its "
                              "index written directly.")  # fmt: skip
        elif self.spec.generator:
            self.hint.setText("Makes a conditional generator: view its samples in the "
                              "Samples panel.")  # fmt: skip
        else:
            self.hint.setText("When finished, select the model and build an index to search.")

    def wait(self, timeout_s: float = 60.0) -> bool:
        """Process events until the run and any indexing end (tests, screenshot driver)."""
        from rsgui.app.workers import wait_until

        return wait_until(lambda: self.task is None and self.index_task is None, timeout_s)

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop a run cleanly (its checkpoint is written) before the window closes."""
        self.cancel()
        if self.index_task is not None:
            self.index_task.cancel()
        self.wait(timeout_s)
