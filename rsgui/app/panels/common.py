"""Small widgets the panels share."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel


class ErrorLabel(QLabel):
    """A red, selectable message that names the file and the problem; hidden while empty."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setStyleSheet("color: #c0392b;")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.hide()

    def show_error(self, text: str) -> None:
        self.setText(text)
        self.show()

    def clear_error(self) -> None:
        self.clear()
        self.hide()


class ShowsErrors:
    """For panels with an :class:`ErrorLabel` as ``self.error``: the one error area they share."""

    error: ErrorLabel

    def show_error(self, text: str) -> None:
        self.error.show_error(text)

    def clear_error(self) -> None:
        self.error.clear_error()


def light_plot(
    title: str, bottom: str, left: str, counts: bool = False, grid: bool = True
) -> pg.PlotWidget:
    """A white plot with a light grid and labelled axes, as every panel draws them.

    ``counts``: the bottom axis counts things (training steps): whole numbers, never scaled by an
    SI prefix (an empty plot would otherwise read "step (x0.001)"). ``grid=False`` for plots
    redrawn live while a worker runs: the grid lines are half the cost of a repaint."""
    plot = pg.PlotWidget(title=title)
    plot.setBackground("w")
    if grid:
        plot.showGrid(x=True, y=True, alpha=0.3)
    plot.setLabel("bottom", bottom)
    plot.setLabel("left", left)
    if counts:
        plot.getAxis("bottom").enableAutoSIPrefix(False)
    return plot


def show_empty(
    plot: pg.PlotWidget, empty: bool, axes: tuple[str, ...] = ("bottom", "left")
) -> None:
    """An empty plot shows no invented scale: the numbers of ``axes`` (those whose range is not
    known yet) are hidden while ``empty``, and so is an empty legend."""
    item = plot.getPlotItem()
    for name in axes:
        item.getAxis(name).setStyle(showValues=not empty)
    if item.legend is not None:
        item.legend.setVisible(not empty)


def axis_values_shown(plot: pg.PlotWidget, name: str) -> bool:
    """Whether the numbers of axis ``name`` are drawn (for tests)."""
    return bool(plot.getPlotItem().getAxis(name).style["showValues"])
