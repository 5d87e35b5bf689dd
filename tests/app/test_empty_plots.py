"""Empty plots show their real ranges or no numbers at all: never "step (x0.001)" from -400 to
400 before a run. Every pyqtgraph plot of the training, evaluation and viewer panels is checked
(the samples panel draws none)."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from rsgui.app.panels.common import axis_values_shown
from rsgui.app.panels.evaluation import EvaluationPanel
from rsgui.app.panels.samples import SamplesPanel
from rsgui.app.panels.training import TrainingPanel
from rsgui.app.panels.viewer import ViewerPanel
from rsgui.progress import Progress

PANELS = [TrainingPanel, EvaluationPanel, ViewerPanel, SamplesPanel]


def _plots(widget) -> list[pg.PlotWidget]:
    return widget.findChildren(pg.PlotWidget)


@pytest.mark.parametrize("cls", PANELS, ids=[c.__name__ for c in PANELS])
def test_empty_plots_show_real_ranges_or_nothing(qtbot, show, state, cls):
    panel = show(cls(state), (1000, 800))
    qtbot.wait(50)
    for plot in _plots(panel):
        item = plot.getPlotItem()
        ranges = dict(zip(("bottom", "left"), item.getViewBox().viewRange(), strict=True))
        for name in ("bottom", "left"):
            axis = item.getAxis(name)
            if not axis.isVisible() or not axis_values_shown(plot, name):
                continue
            title = item.titleLabel.text
            assert axis.autoSIPrefixScale == 1.0, f"{title}: {axis.labelString()}"
            lo, hi = ranges[name]
            # the only scales known before any data are the 0..1 measures (MAP, precision...)
            assert -0.06 <= lo < hi <= 1.06, f"{title} {name} axis shows {lo:.3g}..{hi:.3g}"
        if item.legend is not None and not item.listDataItems():
            assert not item.legend.isVisible(), f"{item.titleLabel.text}: an empty legend"


def test_training_plots_get_their_step_range_once_known(qtbot, show, state):
    panel = show(TrainingPanel(state), (1000, 800))
    assert not axis_values_shown(panel.map_plot, "bottom")
    assert not axis_values_shown(panel.loss_plot, "bottom")
    panel._progress(Progress(10, 400, "train", "train", values={"loss": 0.5}))
    panel._redraw()
    assert axis_values_shown(panel.map_plot, "bottom")
    lo, hi = panel.map_plot.getPlotItem().getViewBox().viewRange()[0]
    assert lo <= 0 and 400 <= hi < 420
    assert panel.map_plot.getAxis("bottom").autoSIPrefixScale == 1.0
    assert axis_values_shown(panel.loss_plot, "bottom") and axis_values_shown(
        panel.loss_plot, "left"
    )
    panel._reset_curves()
    assert not axis_values_shown(panel.loss_plot, "left")
