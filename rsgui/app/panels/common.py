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


def light_plot(title: str, bottom: str, left: str) -> pg.PlotWidget:
    """A white plot with a light grid and labelled axes, as every panel draws them."""
    plot = pg.PlotWidget(title=title)
    plot.setBackground("w")
    plot.showGrid(x=True, y=True, alpha=0.3)
    plot.setLabel("bottom", bottom)
    plot.setLabel("left", left)
    return plot
