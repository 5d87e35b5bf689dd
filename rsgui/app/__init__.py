"""The desktop application: archive browser, composite viewer, query and result panels.

Nothing here imports torch at import time; the window must appear fast.
"""

from __future__ import annotations

import sys


def _pin_singletons() -> None:
    """Work around a reference-count bug of PySide6 6.12: ``SignalInstance.emit()`` returns
    ``True`` without taking a reference, so every ``signal.emit(...)`` made from Python (ours,
    superqt's, pyqtgraph's) drops one reference to ``True``. On CPython < 3.12, where ``True``
    is not immortal, a few thousand emits end in "Fatal Python error: bool_dealloc". Giving the
    singletons a huge reference count makes them effectively immortal, as CPython 3.12+ does."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return
    import ctypes

    for obj in (True, False, None):
        ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 40


_pin_singletons()
