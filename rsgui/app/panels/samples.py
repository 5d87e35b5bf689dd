"""Samples panel: look at what a conditional GAN makes, and keep it as labelled training tiles.

Choose a checkpoint (cDCGAN or ACGAN) and one of its classes; generate a grid of samples from a
seed; walk between the noise vectors of two seeds with a slider; view any band composite or a
single generated band (the viewer's renderer); save the samples as a labelled GeoTIFF folder.
Loading and generating run in workers; a file that is not a usable model is reported here, named.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from rsgui.app.panels.common import ErrorLabel, ShowsErrors
from rsgui.bands import COMPOSITES, INDICES
from rsgui.progress import Progress
from rsgui.services.generation import (
    ModelInfo,
    SampleSet,
    generation_job,
    interpolation_job,
    read_model_info,
    save_samples,
)
from rsgui.services.training import list_checkpoints

ICON = 96
PREVIEW = 240


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    """(H, W, 3) uint8 -> QPixmap (the array is copied, so it may go away)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


def view_choices(band_names: tuple[str, ...]) -> list[tuple[str, dict]]:
    """Composites, indices and single bands that these bands allow: (label, composite changes)."""
    out: list[tuple[str, dict]] = []
    for name, rgb in COMPOSITES.items():
        if all(b in band_names for b in rgb):
            out.append((name, {"mode": "rgb", "rgb": rgb, "preset": name}))
    if len(band_names) >= 3 and not out:
        out.append(
            ("First three bands", {"mode": "rgb", "rgb": tuple(band_names[:3]), "preset": None})
        )
    for name, (a, b) in INDICES.items():
        if a in band_names and b in band_names:
            out.append((name, {"mode": "index", "index": name, "preset": name}))
    for band in band_names:
        out.append((f"Band {band}", {"mode": "single", "band": band, "colormap": "gray",
                                     "preset": None}))  # fmt: skip
    return out


class SamplesPanel(ShowsErrors, QWidget):
    """Model and class choice, generation and interpolation controls, the grid and a preview."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.task = None
        self.info: ModelInfo | None = None
        self.samples: SampleSet | None = None
        self.frames: SampleSet | None = None
        self.saved: list[Path] = []
        self._build()
        state.archiveChanged.connect(self.refresh_models)
        state.compositeChanged.connect(lambda _c: self._render_all())
        self.refresh_models()

    # --- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.model = QComboBox()
        self.model.setMinimumContentsLength(18)
        self.model.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.model.activated.connect(lambda _i: self._model_chosen())
        browse = QPushButton("Open…")
        browse.setToolTip("Open a conditional GAN checkpoint (.safetensors)")
        browse.clicked.connect(self._browse_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(browse)
        self.model_info = QLabel()
        self.model_info.setWordWrap(True)
        self.class_combo = QComboBox()
        self.count = QSpinBox(minimum=1, maximum=256, value=16)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.generate_btn = QPushButton("Generate")
        self.generate_btn.clicked.connect(self.generate)
        self.new_btn = QPushButton("New samples")
        self.new_btn.setToolTip("Draw a new seed and generate")
        self.new_btn.clicked.connect(self.new_samples)
        gen_row = QHBoxLayout()
        gen_row.addWidget(self.generate_btn)
        gen_row.addWidget(self.new_btn)

        self.seed_a = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed_b = QSpinBox(minimum=0, maximum=2**31 - 1, value=1)
        self.n_frames = QSpinBox(minimum=2, maximum=64, value=9)
        self.interp_btn = QPushButton("Interpolate")
        self.interp_btn.clicked.connect(self.interpolate)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self._show_frame)
        self.slider_label = QLabel("t = –")

        self.view = QComboBox()
        self.view.currentIndexChanged.connect(lambda _i: self._render_all())
        self.save_btn = QPushButton("Save as GeoTIFF…")
        self.save_btn.setToolTip("Write the samples into FOLDER/<class>/ (a labelled folder "
                                 "that training can use as extra tiles)")  # fmt: skip
        self.save_btn.clicked.connect(self._save_dialog)

        gen_box = QGroupBox("Samples")
        gf = QFormLayout(gen_box)
        gf.addRow("Model", model_row)
        gf.addRow("", self.model_info)
        gf.addRow("Class", self.class_combo)
        gf.addRow("Number", self.count)
        gf.addRow("Seed", self.seed)
        gf.addRow(gen_row)
        interp_box = QGroupBox("Interpolation between two noise vectors")
        inf = QFormLayout(interp_box)
        inf.addRow("From seed", self.seed_a)
        inf.addRow("To seed", self.seed_b)
        inf.addRow("Frames", self.n_frames)
        inf.addRow(self.interp_btn)
        inf.addRow(self.slider_label, self.slider)
        show_box = QGroupBox("Display and export")
        sf = QFormLayout(show_box)
        sf.addRow("View", self.view)
        sf.addRow(self.save_btn)

        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW, PREVIEW)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #20242a; color: #aaa;")
        self.preview.setText("preview")
        self.preview_caption = QLabel()
        self.preview_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(gen_box)
        ll.addWidget(interp_box)
        ll.addWidget(show_box)
        ll.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        ll.addWidget(self.preview_caption)
        ll.addStretch(1)

        self.status = QLabel("Choose a conditional GAN checkpoint.")
        self.status.setWordWrap(True)
        self.error = ErrorLabel()
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(ICON, ICON))
        self.grid.setGridSize(QSize(ICON + 14, ICON + 24))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.currentRowChanged.connect(self._show_selected)
        self.grid.itemClicked.connect(lambda item: self._show_selected(self.grid.row(item)))

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.status)
        rl.addWidget(self.error)
        rl.addWidget(self.grid, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([300, 800])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self._update_buttons()

    # --- model ---------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Offer the conditional GAN checkpoints of the archive's model folder."""
        from rsgui.app.panels.training import models_dir

        current = self.model.currentData()
        self.model.blockSignals(True)
        self.model.clear()
        root = getattr(self.state, "archive_root", None)
        for ck in list_checkpoints(models_dir(root)):
            if ck.method in ("cdcgan", "acgan"):
                self.model.addItem(f"{ck.path.name} ({ck.method})", str(ck.path))
        if current:
            self._ensure_model_item(current)
        self.model.setCurrentIndex(-1 if not current else self.model.findData(current))
        self.model.blockSignals(False)

    def _ensure_model_item(self, path: str) -> int:
        i = self.model.findData(path)
        if i < 0:
            self.model.addItem(Path(path).name, path)
            i = self.model.count() - 1
        return i

    def _browse_model(self) -> None:
        from rsgui.app.panels.training import models_dir

        start = str(models_dir(getattr(self.state, "archive_root", None)))
        path, _ = QFileDialog.getOpenFileName(self, "Conditional GAN checkpoint", start,
                                              "Model (*.safetensors);;All files (*)")  # fmt: skip
        if path:
            self.load_model(path)

    def _model_chosen(self) -> None:
        path = self.model.currentData()
        if path:
            self.load_model(path)

    def load_model(self, path: str | Path) -> None:
        """Read the checkpoint's classes and bands in a worker; a bad file shows its problem."""
        path = str(path)
        self.model.blockSignals(True)
        self.model.setCurrentIndex(self._ensure_model_item(path))
        self.model.blockSignals(False)
        self.info = None
        self.class_combo.clear()
        self.model_info.clear()
        self.clear_error()
        self.status.setText(f"Reading {Path(path).name}…")
        self._start(read_model_info, (path,), self._model_loaded, "Read model")

    def _model_loaded(self, info: ModelInfo) -> None:
        self.info = info
        self.class_combo.clear()
        self.class_combo.addItems(list(info.classes))
        step = f", step {info.step}" if info.step is not None else ""
        self.model_info.setText(f"{info.method} · {len(info.band_names)} bands "
                                f"({', '.join(info.band_names)}){step}")  # fmt: skip
        current = self.view.currentText()
        self.view.blockSignals(True)
        self.view.clear()
        for label, changes in view_choices(info.band_names):
            self.view.addItem(label, changes)
        i = self.view.findText(current)
        self.view.setCurrentIndex(i if i >= 0 else 0)
        self.view.blockSignals(False)
        self.status.setText(
            f"{info.path.name}: {len(info.classes)} classes. Choose one and generate."
        )

    # --- generate ------------------------------------------------------------------------
    def generate(self) -> None:
        if self.info is None:
            self.show_error("Choose a conditional GAN checkpoint first.")
            return
        self.clear_error()
        args = (
            self.info.path,
            self.class_combo.currentText(),
            self.count.value(),
            self.seed.value(),
        )
        self._start(generation_job, args, self._generated, "Generate samples")

    def new_samples(self) -> None:
        self.seed.setValue(random.randrange(0, 1_000_000))
        self.generate()

    def _generated(self, samples: SampleSet) -> None:
        self.samples = samples
        self.saved = []
        self._fill_grid()
        self.status.setText(f"{len(samples)} samples of {samples.class_name}, seed "
                            f"{samples.seeds[0]} ({samples.source})")  # fmt: skip

    def interpolate(self) -> None:
        if self.info is None:
            self.show_error("Choose a conditional GAN checkpoint first.")
            return
        self.clear_error()
        args = (self.info.path, self.class_combo.currentText(), self.seed_a.value(),
                self.seed_b.value(), self.n_frames.value())  # fmt: skip
        self._start(interpolation_job, args, self._interpolated, "Interpolate")

    def _interpolated(self, frames: SampleSet) -> None:
        self.frames = frames
        self.slider.blockSignals(True)
        self.slider.setRange(0, len(frames) - 1)
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self._show_frame(0)
        self.status.setText(f"Interpolation seed {frames.seeds[0]} → {frames.seeds[-1]}: "
                            "move the slider")  # fmt: skip

    # --- display -------------------------------------------------------------------------
    def composite(self):
        """The viewer's composite (stretch settings) with this panel's band choice."""
        from rsgui.app.models import Composite

        base = getattr(self.state, "composite", None) or Composite()
        changes = self.view.currentData() or {}
        return base.with_(**changes)

    def render_tile(
        self, tile: np.ndarray, band_names: tuple[str, ...], normalisation: dict
    ) -> np.ndarray:
        from rsgui.app.render import render_safe

        raw = np.asarray(tile, np.float32) * float(normalisation.get("divisor", 4095.0))
        return render_safe(raw, tuple(band_names), self.composite())

    def _fill_grid(self) -> None:
        s = self.samples
        self.grid.clear()
        if s is None:
            return
        for i, tile in enumerate(s.pixels):
            pix = to_pixmap(self.render_tile(tile, s.band_names, s.normalisation))
            icon = QIcon(pix.scaled(ICON, ICON))
            icon.addPixmap(pix.scaled(ICON, ICON), QIcon.Mode.Selected)  # no selection tint
            item = QListWidgetItem(icon, f"#{i + 1}")
            item.setToolTip(f"{s.class_name}, seed {s.seeds[0]}, sample {i + 1}")
            self.grid.addItem(item)
        self.grid.setCurrentRow(0)

    def _show_selected(self, row: int) -> None:
        s = self.samples
        if s is None or not 0 <= row < len(s):
            return
        self._last_preview = "grid"
        self._preview(
            s.pixels[row], s, f"{s.class_name} · sample {row + 1} · {self.view.currentText()}"
        )

    def _show_frame(self, i: int) -> None:
        f = self.frames
        if f is None or not 0 <= i < len(f):
            return
        t = i / max(1, len(f) - 1)
        self._last_preview = "frame"
        self.slider_label.setText(f"t = {t:.2f}")
        self._preview(
            f.pixels[i], f, f"{f.class_name} · seed {f.seeds[0]} → {f.seeds[-1]}, t = {t:.2f}"
        )

    def _preview(self, tile, s: SampleSet, caption: str) -> None:
        pix = to_pixmap(self.render_tile(tile, s.band_names, s.normalisation))
        self.preview.setPixmap(pix.scaled(PREVIEW, PREVIEW, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation))  # fmt: skip
        self.preview_caption.setText(caption)

    def _render_all(self) -> None:
        """Draw everything again in the current view, keeping what the preview showed."""
        shown, row = getattr(self, "_last_preview", "grid"), self.grid.currentRow()
        self.grid.blockSignals(True)
        self._fill_grid()
        self.grid.setCurrentRow(row)
        self.grid.blockSignals(False)
        if shown == "frame":
            self._show_frame(self.slider.value())
        else:
            self._show_selected(row)

    # --- save ----------------------------------------------------------------------------
    def _save_dialog(self) -> None:
        if self.samples is None:
            return
        from rsgui.app.panels.training import models_dir

        start = str(models_dir(getattr(self.state, "archive_root", None)).parent / "generated")
        folder = QFileDialog.getExistingDirectory(
            self, "Save samples into (a class folder is made)", start
        )
        if folder:
            self.save(folder)

    def save(self, folder: str | Path) -> None:
        """Write the current samples as GeoTIFFs into ``folder/<class>/`` (in a worker)."""
        if self.samples is None:
            return
        self.clear_error()
        self._start(save_samples, (self.samples, Path(folder)), self._saved, "Save samples")

    def _saved(self, paths: list[Path]) -> None:
        self.saved = list(paths)
        where = paths[0].parent if paths else "?"
        self.status.setText(f"Saved {len(paths)} GeoTIFFs in {where}")
        self.state.notify(f"Saved {len(paths)} generated tiles in {where}", "info", str(where))

    # --- plumbing ------------------------------------------------------------------------
    def _start(self, job, args, on_done, name: str) -> None:
        """Run ``job(*args)`` in a worker (one at a time: a new one replaces the running one)."""
        self.task = self.state.tasks.start(
            job, *args, name=name, key="samples-panel", on_progress=self._on_progress,
            on_returned=on_done, on_error=self._failed, on_finished=self._ended,
        )  # fmt: skip
        self._update_buttons()

    def _on_progress(self, p: Progress) -> None:
        if p.note:
            self.status.setText(p.note)

    def _failed(self, exc: BaseException) -> None:
        self.show_error(str(exc))
        self.status.setText("")

    def _ended(self) -> None:
        self.task = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.task is not None
        ready = self.info is not None and not busy
        for b in (self.generate_btn, self.new_btn, self.interp_btn):
            b.setEnabled(ready)
        self.save_btn.setEnabled(self.samples is not None and not busy)

    def wait(self, timeout_s: float = 30.0) -> bool:
        from rsgui.app.workers import wait_until

        return wait_until(lambda: self.task is None, timeout_s)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        self.wait(timeout_s)
