"""Training panel: choose a method and its settings, run it in a worker, watch it learn.

The run itself is :func:`rsgui.app.jobs.training_job`, a plain generator; here it is driven in a
worker thread, and its progress dicts come back through a queued signal. Pause makes the job wait
between two steps; cancel makes it stop after the current step and write its checkpoint, so a
cancelled run can be resumed or indexed.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
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

from rsgui.app import jobs
from rsgui.app.devices import list_devices
from rsgui.app.panels.common import ErrorLabel, light_plot

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
    from rsgui.app.state import writable_index_dir

    return writable_index_dir(Path(archive_root)).parent / "models"


@contextlib.contextmanager
def one_torch_thread():
    """Run tiny demo networks on one CPU thread (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class JobRelay(QObject):
    """Carries a job's progress dicts from its worker thread to a panel (queued signal).

    It has no parent, so it outlives a panel deleted while its job still runs: the late events
    then go nowhere instead of into a deleted object."""

    event = Signal(object)


class TrainingPanel(QWidget):
    """Settings, controls, live curves and the checkpoints of the run's folder."""

    runFinished = Signal(object)  # jobs.TrainingResult

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._relay = JobRelay()
        self.jobEvent = self._relay.event  # progress dicts from the worker thread
        self.task = None
        self.index_task = None
        self.result: jobs.TrainingResult | None = None
        self._cancel = threading.Event()
        self._pause = threading.Event()
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._map_points: tuple[list[float], list[float]] = ([], [])
        self._dirty = False
        self._last_step = 0
        self._out_edited = False
        self.extra_options: dict = {}  # method extras a script or the demo may add
        self._build()
        self.jobEvent.connect(self._on_event)
        self._redraw_timer = QTimer(self, interval=200)
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

    # --- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.method = QComboBox()
        for spec in jobs.METHODS.values():
            self.method.addItem(spec.label, spec.key)
        self.bands = QComboBox()
        self.bits = QComboBox()
        for b in BITS:
            self.bits.addItem(f"{b} bits", b)
        self.bits.setCurrentIndex(BITS.index(64))
        self.preset = QComboBox()
        self.preset.addItem("Quick (small network, minutes)", "quick")
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

        self.loss_plot = light_plot("Training losses", "step", "loss")
        self.loss_plot.addLegend(
            offset=(-10, 10), labelTextColor="k", brush=(255, 255, 255, 220), pen=(200, 200, 200)
        )
        self.loss_plot.setDownsampling(auto=True, mode="peak")
        self.loss_plot.setClipToView(True)
        self.map_plot = light_plot("Retrieval MAP during training", "step", "MAP")
        self.map_plot.setYRange(0, 1)
        self.map_curve = self.map_plot.plot([], [], pen=pg.mkPen("#2c3e50", width=2),
                                            symbol="o", symbolSize=6)  # fmt: skip
        self.map_note = pg.TextItem("no retrieval measure reported yet", color="#7f8c8d")
        self.map_plot.addItem(self.map_note)
        self.map_note.setPos(0, 0.5)

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
    def spec(self) -> jobs.MethodSpec:
        return jobs.METHODS[self.method.currentData()]

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
        from rsgui.app.state import writable_index_dir

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
        self._cancel.clear()
        self._pause.clear()
        self.result = None
        self.rate.setText(f"Starting {spec.label}…")
        self.progress.setRange(0, 0)
        archive = self.state.archive
        self._ckpt_timer.start()
        self._redraw_timer.start()
        self.task = self.state.tasks.start(
            self._work, archive, s, str(resume) if resume else None,
            name=f"Training {spec.label}", on_returned=self._finished,
            on_error=self._failed, on_finished=self._ended,
        )  # fmt: skip
        self._set_running(True)

    def _work(self, archive, s: dict, resume, progress=None, cancel=None):
        """Worker thread: drive the job to its end, whatever asked it to stop."""
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads()))
        stop = (lambda: self._cancel.is_set() or cancel()) if cancel else self._cancel.is_set
        it = jobs.training_job(archive, resume=resume, cancel=stop, pause=self._pause.is_set, **s)
        return jobs.run_to_end(it, self.jobEvent.emit, progress)

    def toggle_pause(self) -> None:
        if not self.running:
            return
        if self._pause.is_set():
            self._pause.clear()
            self.pause_btn.setText("Pause")
            self.rate.setText("Resuming…")
        else:
            self._pause.set()
            self.pause_btn.setText("Resume")
            self.rate.setText("Pausing after this step…")

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    def cancel(self) -> None:
        """Stop after the current step; the job writes its checkpoint before it ends."""
        if not self.running:
            return
        self._cancel.set()
        self._pause.clear()
        self.rate.setText("Stopping after this step, saving the checkpoint…")
        self.cancel_btn.setEnabled(False)

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
    def _on_event(self, p: dict) -> None:
        kind = p.get("event")
        if kind == "status":
            self.rate.setText(p.get("message", ""))
        elif kind == "paused":
            self.rate.setText(f"Paused at step {p.get('step', 0)} — Resume to continue")
        elif kind == "resumed":
            self.rate.setText(f"Resumed at step {p.get('step', 0)}")
        elif kind == "progress":
            self._progress(p)
        elif kind == "prepare" and p.get("total"):  # reading tiles, features, fitting, encoding
            step, total = int(p["step"]), int(p["total"])
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            self.progress.setFormat(f"{p.get('message') or 'preparing'}: {step} / {total}")

    def _progress(self, p: dict) -> None:
        step, total = int(p.get("step", 0)), int(p.get("total") or 0)
        self._last_step = step
        if total > 0:
            if self.progress.maximum() != total:
                self.map_plot.setXRange(0, total, padding=0.02)
            self.progress.setRange(0, total)
            self.progress.setValue(min(step, total))
            self.progress.setFormat(f"step {step} / {total}  (%p%)")
        ips, eta = p.get("images_per_s", math.nan), p.get("eta_s", math.nan)
        if not self._pause.is_set() and not self._cancel.is_set():
            rate = f"{ips:.1f} images/s" if math.isfinite(ips) and ips > 0 else "– images/s"
            self.rate.setText(f"{rate} · ETA {format_eta(eta)}")
        for name, value in p.get("losses", {}).items():
            xs, ys = self._series.setdefault(name, ([], []))
            if math.isfinite(value):
                xs.append(step)
                ys.append(value)
        if p.get("map") is not None:
            self._map_points[0].append(step)
            self._map_points[1].append(float(p["map"]))
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
        if self._map_points[0]:
            self.map_curve.setData(*self._map_points)
            self.map_note.hide()

    def _reset_curves(self) -> None:
        for curve in self._curves.values():
            self.loss_plot.removeItem(curve)
        legend = self.loss_plot.plotItem.legend
        if legend is not None:
            legend.clear()
        self._curves.clear()
        self._series.clear()
        self._map_points = ([], [])
        self.map_curve.setData([], [])
        self.map_note.setText("a generator: no retrieval measure" if self.spec.generator
                              else "no retrieval measure reported yet")  # fmt: skip
        self.map_note.show()
        self.loss_plot.setTitle("Training losses")
        self._dirty = False

    def _finished(self, result) -> None:
        self.result = result
        if result is None:
            return
        name = Path(result.path).name
        if result.cancelled and not Path(result.path).is_file():
            self.rate.setText(f"Cancelled at step {self._last_step}, before the first checkpoint")
        elif result.cancelled:
            self.rate.setText(f"Cancelled at step {self._last_step}; kept {name}")
        else:
            self.rate.setText(f"Finished: {name}")
        if result.is_index and not result.cancelled:
            self.state.notify(f"Index written: {result.path}", "info", result.path)
            self.state.refresh_indexes()
        self.runFinished.emit(result)

    def _failed(self, exc: BaseException) -> None:
        if type(exc).__name__ in ("Cancelled", "TrainingCancelled"):
            self.rate.setText("Cancelled; nothing was written")
            return
        self.show_error(f"Training stopped: {exc}")
        self.state.notify(f"Training failed: {exc}", "error")

    def _ended(self) -> None:
        self.task = None
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
        self._checkpoints = jobs.list_checkpoints(folder) if folder is not None else []
        self.checkpoints.setRowCount(len(self._checkpoints))
        for row, ck in enumerate(self._checkpoints):
            step = "" if ck.step is None else (
                f"{ck.step} / {ck.total}" if ck.total else str(ck.step)
            )  # fmt: skip
            label = jobs.METHODS[ck.method].label if ck.method in jobs.METHODS else ck.method
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
        self._dirty = True
        self._redraw()
        self.loss_plot.setTitle(f"Training losses — {Path(path).name}")

    def checkpoint_names(self) -> list[str]:
        return [ck.path.name for ck in getattr(self, "_checkpoints", [])]

    def selected_checkpoint(self) -> jobs.CheckpointInfo | None:
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
        spec = jobs.METHODS.get(ck.method)
        if spec is None or not spec.retrieval:
            self.show_error(f"{ck.path.name}: a {ck.method} model makes samples, not codes; "
                            "use it in the samples panel.")  # fmt: skip
            return
        out = self._index_dir(root) / f"{ck.path.stem}.npz"
        self.clear_error()
        self.index_btn.setEnabled(False)
        self.rate.setText(f"Indexing {root.name} with {ck.path.name}…")
        self.index_task = self.state.tasks.start(
            self._index_work, self.state.archive, ck.path, out, name="Build index",
            on_returned=self._indexed, on_error=self._index_failed,
            on_finished=self._index_ended,
        )  # fmt: skip

    def _index_work(self, archive, model, out, progress=None, cancel=None):
        return jobs.run_to_end(jobs.index_job(archive, model, out, cancel=cancel),
                               self.jobEvent.emit, progress)  # fmt: skip

    def _indexed(self, result: jobs.IndexResult) -> None:
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
        spec = jobs.METHODS.get(ck.method) if ck is not None else None
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

    def show_error(self, text: str) -> None:
        self.error.show_error(text)

    def clear_error(self) -> None:
        self.error.clear_error()

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

    # --- screenshot ----------------------------------------------------------------------
    def screenshot_demo(self) -> None:
        """A short real run on the open archive: a tiny conditional GAN, curves and checkpoint."""
        if self._archive_root() is None:
            return
        self.method.setCurrentIndex(self.method.findData("cdcgan"))
        self.steps.setValue(80)
        self.batch.setValue(8)
        self.device.setCurrentIndex(self.device.findData("cpu"))
        self.extra_options = {"model": {"width": 0.125, "image_size": 32}}  # seconds on a CPU
        with one_torch_thread():  # a tiny network: more threads only add contention
            try:
                self.start()
                self.wait(90.0)
            finally:
                self.extra_options = {}
        self._redraw()
        if self.checkpoint_names():
            self.checkpoints.selectRow(0)
