"""The desktop application (the front layer): it calls :mod:`rsgui.services` and holds no copy of
their logic.

- :mod:`~rsgui.app.models`: what is shown and found, as plain records (no Qt);
  :mod:`~rsgui.app.render` turns tiles into images with them (no Qt either).
- :mod:`~rsgui.app.state`: :class:`~rsgui.app.state.AppState`, the Qt object every panel
  observes; :mod:`~rsgui.app.workers`: long jobs (generators yielding
  :class:`rsgui.progress.Progress`) on superqt's ``GeneratorWorker``.
- :mod:`~rsgui.app.main_window`, :mod:`~rsgui.app.panels`, :mod:`~rsgui.app.thumbnails`: the
  widgets; :mod:`~rsgui.app.screenshot`: ``rsgui --screenshot``, which drives the panels;
  :mod:`~rsgui.app.main`: the ``rsgui`` command.

Nothing here imports torch at import time; the window must appear fast.
"""
