"""Band-composite viewer: any three bands as R, G, B, presets, a single band with a colour map,
NDVI/NDWI, contrast stretches, per-band histograms, zoom and a pixel read-out by band name.

The chosen composite is the application's (``AppState.composite``), so thumbnails and results
follow it. Bands the shown tile lacks are greyed out in the pickers, never an error.
"""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import qdebounced, qthrottled

from rsgui.app.models import SCOPES, STRETCHES, Composite, TileRef
from rsgui.app.panels.common import show_empty
from rsgui.app.render import (
    COLORMAPS,
    INDEX_COLORMAPS,
    INDEX_RANGE,
    band_histogram,
    band_limits,
    missing_bands,
    pixel_values,
    render,
    required_bands,
    spectral_index,
)
from rsgui.app.state import AppState
from rsgui.bands import COMPOSITES, INDICES, S2_BANDS

log = logging.getLogger(__name__)
CUSTOM = "Custom"
READOUT_HINT = "Move the pointer over the image to read band values."
MODES = {"rgb": "Band composite", "single": "Single band", "index": "Spectral index"}
CHANNEL_PENS = ("#e53935", "#43a047", "#1e88e5")


def load_tile(state: AppState, ref: TileRef) -> tuple[np.ndarray, tuple[str, ...]]:
    """File values and band names of a tile: through the archive when it belongs to it."""
    archive = state.archive
    if archive is not None and ref.archive_index is not None:
        return archive.read_raw(ref.archive_index), tuple(archive.band_names)
    if archive is not None:
        i = archive.find(ref.path)
        if i is not None:
            return archive.read_raw(i), tuple(archive.band_names)
    from rsgui.app.thumbnails import read_raw_file

    return read_raw_file(ref.path, archive.band_names if archive is not None else ())


class _BandCombo(QComboBox):
    """Band picker whose entries are disabled when the tile lacks the band."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setModel(QStandardItemModel(self))
        self.setMinimumContentsLength(5)

    def set_bands(self, names: tuple[str, ...], available: set[str]) -> None:
        current = self.currentText()
        blocker = QSignalBlocker(self)
        model: QStandardItemModel = self.model()  # type: ignore[assignment]
        model.clear()
        for name in names:
            item = QStandardItem(name)
            item.setEnabled(name in available)
            if name not in available:
                item.setToolTip(f"{name} is not in this archive")
            model.appendRow(item)
        if current:
            self.setCurrentText(current)
        del blocker

    def is_enabled(self, name: str) -> bool:
        i = self.findText(name)
        return i >= 0 and self.model().item(i).isEnabled()  # type: ignore[attr-defined]


class ViewerPanel(QWidget):
    """Shows ``state.selected`` with ``state.composite``."""

    def __init__(self, state: AppState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.raw: np.ndarray | None = None
        self.band_names: tuple[str, ...] = ()
        self.ref: TileRef | None = None
        self.error: str = ""
        self._pickers_ready = False

        # --- controls -------------------------------------------------------------------
        self.mode_combo = QComboBox()
        for key, text in MODES.items():
            self.mode_combo.addItem(text, key)
        self.preset_combo = QComboBox()
        self.preset_combo.setModel(QStandardItemModel(self))
        self.rgb_combos = [_BandCombo() for _ in range(3)]
        self.band_combo = _BandCombo()
        self.cmap_combo = QComboBox()
        self.cmap_combo.addItems(list(COLORMAPS))
        self.index_combo = QComboBox()
        self.index_combo.setModel(QStandardItemModel(self))
        self.stretch_combo = QComboBox()
        for key, text in STRETCHES.items():
            self.stretch_combo.addItem(text, key)
        self.scope_combo = QComboBox()
        for key, text in SCOPES.items():
            self.scope_combo.addItem(f"statistics of {text}", key)
        self.low_spin = _spin(0, 49.9, 0.5, " %")
        self.high_spin = _spin(50.1, 100, 0.5, " %")
        self.fmin_spin = _spin(-1e6, 1e6, 50, "")
        self.fmax_spin = _spin(-1e6, 1e6, 50, "")

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Show"), 0, 0)
        grid.addWidget(self.mode_combo, 0, 1)
        self.preset_label = QLabel("Preset")
        grid.addWidget(self.preset_label, 0, 2)
        grid.addWidget(self.preset_combo, 0, 3, 1, 3)
        self.rgb_row = QWidget()
        rgb = QHBoxLayout(self.rgb_row)
        rgb.setContentsMargins(0, 0, 0, 0)
        for label, combo in zip("RGB", self.rgb_combos, strict=True):
            rgb.addWidget(QLabel(label))
            rgb.addWidget(combo, 1)
        self.single_row = QWidget()
        single = QHBoxLayout(self.single_row)
        single.setContentsMargins(0, 0, 0, 0)
        single.addWidget(QLabel("Band"))
        single.addWidget(self.band_combo, 1)
        single.addWidget(QLabel("Colours"))
        single.addWidget(self.cmap_combo, 1)
        self.index_row = QWidget()
        idx = QHBoxLayout(self.index_row)
        idx.setContentsMargins(0, 0, 0, 0)
        idx.addWidget(QLabel("Index"))
        idx.addWidget(self.index_combo, 1)
        self.index_formula = QLabel("")
        idx.addWidget(self.index_formula, 2)
        grid.addWidget(self.rgb_row, 1, 0, 1, 6)
        grid.addWidget(self.single_row, 2, 0, 1, 6)
        grid.addWidget(self.index_row, 3, 0, 1, 6)
        self.stretch_label = QLabel("Stretch")
        grid.addWidget(self.stretch_label, 4, 0)
        grid.addWidget(self.stretch_combo, 4, 1)
        self.pct_row = QWidget()
        pct = QHBoxLayout(self.pct_row)
        pct.setContentsMargins(0, 0, 0, 0)
        pct.addWidget(QLabel("low"))
        pct.addWidget(self.low_spin)
        pct.addWidget(QLabel("high"))
        pct.addWidget(self.high_spin)
        self.fixed_row = QWidget()
        fixed = QHBoxLayout(self.fixed_row)
        fixed.setContentsMargins(0, 0, 0, 0)
        fixed.addWidget(QLabel("min"))
        fixed.addWidget(self.fmin_spin)
        fixed.addWidget(QLabel("max"))
        fixed.addWidget(self.fmax_spin)
        grid.addWidget(self.scope_combo, 4, 2, 1, 2)
        grid.addWidget(self.pct_row, 5, 1, 1, 5)
        grid.addWidget(self.fixed_row, 6, 1, 1, 5)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        # --- image, histogram, read-out ---------------------------------------------------
        self.title = QLabel("No tile selected")
        f = QFont(self.title.font())
        f.setBold(True)
        self.title.setFont(f)
        self.title.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("#202020")
        self.vb = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image_item)
        self.message = pg.TextItem("", color="#eeeeee", anchor=(0.5, 0.5))
        self.graphics.setMinimumSize(220, 220)
        self.hist = pg.PlotWidget()
        self.hist.setBackground("#202020")
        self.hist.setMinimumHeight(110)
        self.hist.setMaximumHeight(170)
        self.hist.setMouseEnabled(x=True, y=False)
        self.hist.getPlotItem().hideAxis("left")
        self.hist.getPlotItem().addLegend(offset=(-5, 5), labelTextSize="8pt")
        show_empty(self.hist, True, ("bottom",))  # no tile, no values: no invented 0..1 scale
        self.readout = QLabel(READOUT_HINT)
        self.readout.setObjectName("pixelReadout")
        self.readout.setWordWrap(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        mono.setPointSize(max(7, self.font().pointSize() - 1))
        self.readout.setFont(mono)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setMinimumHeight(3 * self.readout.fontMetrics().height())

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.graphics)
        split.addWidget(self.hist)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addLayout(grid)
        lay.addWidget(split, 1)
        lay.addWidget(self.readout)

        # --- wiring -------------------------------------------------------------------------
        self.mode_combo.currentIndexChanged.connect(self._controls_changed)
        self.preset_combo.currentIndexChanged.connect(self._preset_chosen)
        for combo in (*self.rgb_combos, self.band_combo, self.cmap_combo, self.index_combo):
            combo.currentIndexChanged.connect(self._controls_changed)
        self.stretch_combo.currentIndexChanged.connect(self._controls_changed)
        self.scope_combo.currentIndexChanged.connect(self._controls_changed)
        for spin in (self.low_spin, self.high_spin, self.fmin_spin, self.fmax_spin):
            spin.valueChanged.connect(self._spin_changed)
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)
        state.tileSelected.connect(self.show_tile)
        state.compositeChanged.connect(self._composite_changed)
        state.archiveChanged.connect(self._archive_changed)
        state.referenceChanged.connect(self.redraw)
        self._archive_changed()

    # --- band lists ---------------------------------------------------------------------
    def _available(self) -> tuple[str, ...]:
        if self.band_names:
            return self.band_names
        archive = self.state.archive
        return tuple(archive.band_names) if archive is not None else tuple(S2_BANDS)

    def _refresh_pickers(self) -> None:
        avail = self._available()
        names = tuple(S2_BANDS) + tuple(b for b in avail if b not in S2_BANDS)
        aset = set(avail)
        for combo in (*self.rgb_combos, self.band_combo):
            combo.set_bands(names, aset)
        with QSignalBlocker(self.preset_combo):
            model: QStandardItemModel = self.preset_combo.model()  # type: ignore[assignment]
            model.clear()
            for name, bands in COMPOSITES.items():
                item = QStandardItem(f"{name} ({'-'.join(bands)})")
                item.setData(name, Qt.ItemDataRole.UserRole)
                ok = all(b in aset for b in bands)
                item.setEnabled(ok)
                if not ok:
                    item.setToolTip("needs " + ", ".join(b for b in bands if b not in aset))
                model.appendRow(item)
            custom = QStandardItem(CUSTOM)
            custom.setData(CUSTOM, Qt.ItemDataRole.UserRole)
            model.appendRow(custom)
        with QSignalBlocker(self.index_combo):
            model = self.index_combo.model()  # type: ignore[assignment]
            model.clear()
            for name, (a, b) in INDICES.items():
                item = QStandardItem(name)
                item.setData(name, Qt.ItemDataRole.UserRole)
                item.setEnabled(a in aset and b in aset)
                model.appendRow(item)
        self._sync_controls(self.state.composite)

    def preset_enabled(self, name: str) -> bool:
        model: QStandardItemModel = self.preset_combo.model()  # type: ignore[assignment]
        for row in range(model.rowCount()):
            item = model.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                return item.isEnabled()
        return False

    def _archive_changed(self) -> None:
        self.raw = None
        self.band_names = ()
        self.ref = None
        self._refresh_pickers()
        self.redraw()

    # --- controls <-> composite ------------------------------------------------------------
    def _sync_controls(self, c: Composite) -> None:
        widgets = (
            self.mode_combo, self.preset_combo, *self.rgb_combos, self.band_combo, self.cmap_combo,
            self.index_combo, self.stretch_combo, self.scope_combo, self.low_spin, self.high_spin, self.fmin_spin,
            self.fmax_spin,
        )  # fmt: skip
        blockers = [QSignalBlocker(w) for w in widgets]
        self.mode_combo.setCurrentIndex(list(MODES).index(c.mode))
        preset = c.preset if c.preset in COMPOSITES else CUSTOM
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(preset))
        for combo, band in zip(self.rgb_combos, c.rgb, strict=True):
            combo.setCurrentText(band)
        self.band_combo.setCurrentText(c.band)
        self.cmap_combo.setCurrentText(c.colormap)
        self.index_combo.setCurrentIndex(max(0, self.index_combo.findData(c.index)))
        self.stretch_combo.setCurrentIndex(self.stretch_combo.findData(c.stretch))
        self.scope_combo.setCurrentIndex(self.scope_combo.findData(c.scope))
        self.low_spin.setValue(c.low_pct)
        self.high_spin.setValue(c.high_pct)
        self.fmin_spin.setValue(c.fixed_range[0])
        self.fmax_spin.setValue(c.fixed_range[1])
        del blockers
        self.rgb_row.setVisible(c.mode == "rgb")
        self.preset_combo.setVisible(c.mode == "rgb")
        self.preset_label.setVisible(c.mode == "rgb")
        self.single_row.setVisible(c.mode == "single")
        self.index_row.setVisible(c.mode == "index")
        a, b = INDICES.get(c.index, ("?", "?"))
        self.index_formula.setText(
            f"({a} − {b}) / ({a} + {b}), colours {INDEX_COLORMAPS.get(c.index, '')}"
        )
        stretchable = c.mode != "index"  # indices use their absolute -1..1 scale
        for w in (self.stretch_label, self.stretch_combo):
            w.setEnabled(stretchable)
        self.scope_combo.setEnabled(stretchable and c.stretch != "fixed")
        self.pct_row.setVisible(stretchable and c.stretch == "cumulative")
        self.fixed_row.setVisible(stretchable and c.stretch == "fixed")

    def composite_from_controls(self) -> Composite:
        c = self.state.composite
        rgb = tuple(combo.currentText() for combo in self.rgb_combos)
        preset = c.preset if c.preset in COMPOSITES and COMPOSITES[c.preset] == rgb else None
        return c.with_(
            mode=self.mode_combo.currentData(),
            rgb=rgb,
            band=self.band_combo.currentText() or c.band,
            colormap=self.cmap_combo.currentText(),
            index=self.index_combo.currentData() or c.index,
            stretch=self.stretch_combo.currentData(),
            scope=self.scope_combo.currentData(),
            low_pct=self.low_spin.value(),
            high_pct=self.high_spin.value(),
            fixed_range=(self.fmin_spin.value(), self.fmax_spin.value()),
            preset=preset,
        )

    def _controls_changed(self, *_args) -> None:
        self.state.set_composite(self.composite_from_controls())

    @qdebounced(timeout=120)
    def _spin_changed(self, *_args) -> None:
        self._controls_changed()

    def _preset_chosen(self, _row: int) -> None:
        name = self.preset_combo.currentData()
        if name in COMPOSITES and self.preset_enabled(name):
            self.state.set_composite(
                self.state.composite.with_(mode="rgb", rgb=COMPOSITES[name], preset=name)
            )

    def apply_preset(self, name: str) -> bool:
        """Choose a preset (composite name, ``NDVI``/``NDWI``); False when the bands are missing."""
        avail = set(self._available())
        if name in COMPOSITES:
            if not all(b in avail for b in COMPOSITES[name]):
                return False
            self.state.set_composite(
                self.state.composite.with_(mode="rgb", rgb=COMPOSITES[name], preset=name)
            )
            return True
        if name in INDICES:
            if not all(b in avail for b in INDICES[name]):
                return False
            self.state.set_composite(self.state.composite.with_(mode="index", index=name))
            return True
        raise ValueError(f"unknown preset {name!r}")

    def _composite_changed(self, c: Composite) -> None:
        self._sync_controls(c)
        self._redraw_throttled()

    @qthrottled(timeout=40)
    def _redraw_throttled(self) -> None:
        self.redraw()

    # --- tile & drawing ---------------------------------------------------------------------
    def show_tile(self, ref: TileRef | None) -> None:
        self.ref = ref
        self.raw = None
        self.error = ""
        self.readout.setText(READOUT_HINT)
        old_bands = self.band_names
        if ref is not None:
            try:
                self.raw, self.band_names = load_tile(self.state, ref)
            except Exception as exc:
                self.error = f"{ref.path}: {exc}"
                self.state.notify(self.error, "error", ref.path)
        if self.raw is None:
            self.band_names = ()
        if old_bands != self.band_names or not self._pickers_ready:
            self._pickers_ready = True
            self._refresh_pickers()
        self.redraw()

    def _title(self) -> str:
        ref = self.ref
        if ref is None:
            return "No tile selected"
        label = None
        if ref.archive_index is not None and self.state.archive is not None:
            label = self.state.archive.records[ref.archive_index].label
        shape = f" · {self.raw.shape[2]}×{self.raw.shape[1]} px" if self.raw is not None else ""
        return f"{ref.name}" + (f" · {label}" if label else "") + shape

    def redraw(self) -> None:
        self.title.setText(self._title())
        self.hist.clear()
        show_empty(self.hist, True, ("bottom",))
        if self.message.scene() is not None:
            self.vb.removeItem(self.message)
        if self.raw is None:
            self.image_item.clear()
            self._show_message(self.error or "Select a tile in the archive or the results.")
            return
        c = self.state.composite
        missing = missing_bands(c, self.band_names)
        if missing:
            self.image_item.clear()
            self._show_message(f"This tile lacks {', '.join(missing)}: choose other bands.")
            return
        try:
            rgb = render(self.raw, self.band_names, c, self._reference())
        except Exception as exc:
            self.image_item.clear()
            self._show_message(str(exc))
            return
        self.image_item.setImage(rgb, autoLevels=False, levels=(0, 255))
        self.vb.autoRange(padding=0.02)
        self._draw_histograms(c)
        show_empty(self.hist, False, ("bottom",))

    def _reference(self):
        """The archive's pixel sample, when the shown tile is read like the archive's tiles."""
        ref, archive = self.state.reference, self.state.archive
        if ref is None or archive is None or tuple(archive.band_names) != self.band_names:
            return None
        return ref

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.vb.addItem(self.message)
        self.message.setPos(0, 0)
        self.vb.setRange(xRange=(-1, 1), yRange=(-1, 1))

    def _draw_histograms(self, c: Composite) -> None:
        plot = self.hist.getPlotItem()
        if c.mode == "index":
            values = spectral_index(self.raw, self.band_names, c.index)
            series = [(c.index, values, "#fdd835")]
        else:
            names = required_bands(c)
            pens = CHANNEL_PENS if c.mode == "rgb" else ("#eeeeee",)
            series = [
                (n, self.raw[self.band_names.index(n)], p)
                for n, p in zip(names, pens, strict=False)
            ]
        seen: set[str] = set()
        for name, band, pen in series:
            counts, edges = band_histogram(band, 64)
            label = name if name not in seen else None
            seen.add(name)
            plot.plot(edges, counts, stepMode="center", pen=pg.mkPen(pen, width=1.5), name=label)
            if c.mode == "index":
                lo, hi = INDEX_RANGE
            else:
                lo, hi = band_limits(band, c, name, self._reference())
            for x in (lo, hi):
                plot.addItem(
                    pg.InfiniteLine(x, angle=90, pen=pg.mkPen(pen, style=Qt.PenStyle.DashLine))
                )

    # --- pixel read-out -----------------------------------------------------------------------
    @qthrottled(timeout=30)
    def _mouse_moved(self, pos) -> None:
        if self.raw is None or self.image_item.image is None:
            return
        p = self.image_item.mapFromScene(pos)
        self.readout.setText(self.readout_at(int(np.floor(p.y())), int(np.floor(p.x()))))

    def readout_at(self, row: int, col: int) -> str:
        """Text of all band values at a pixel, by band name."""
        if self.raw is None:
            return ""
        values = pixel_values(self.raw, self.band_names, row, col)
        if not values:
            return "outside the tile"
        parts = [f"{name} {v:g}" for name, v in values.items()]
        c = self.state.composite
        extra = ""
        for name, (a, b) in INDICES.items():
            if a in values and b in values and (values[a] + values[b]) != 0:
                extra += f"  {name} {(values[a] - values[b]) / (values[a] + values[b]):+.3f}"
        del c
        return f"x {col}, y {row}:  " + "  ".join(parts) + extra


def _spin(lo: float, hi: float, step: float, suffix: str) -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setDecimals(1)
    s.setSuffix(suffix)
    s.setKeyboardTracking(False)
    return s
