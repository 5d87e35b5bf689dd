"""Panels of the main window. Each is a QWidget built as ``Panel(state: AppState, parent=None)``
that observes :class:`rsgui.app.state.AppState`; the screenshots drive them
from :mod:`rsgui.app.screenshot`, so a panel holds no demo code."""
