"""Panels of the main window. Each is a QWidget built as ``Panel(state: AppState, parent=None)``
that observes :class:`rsgui.app.state.AppState` and may offer ``screenshot_demo(self) -> None``."""
