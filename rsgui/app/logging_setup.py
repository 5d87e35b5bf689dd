"""Logging to a file in the user data folder, and an exception hook that never lets bad input
close the application: the full trace goes to the log, a one-line message to the window."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
from collections.abc import Callable
from pathlib import Path

LOG_NAME = "rsgui.log"
_installed_file: Path | None = None


def log_file_path() -> Path:
    from rsgui.app.settings import user_data_dir

    return user_data_dir() / "logs" / LOG_NAME


def setup_logging(level: int = logging.INFO, path: Path | None = None) -> Path:
    """Rotating log file (1 MB x 3) plus warnings on stderr. Idempotent."""
    global _installed_file
    path = path or log_file_path()
    if _installed_file == path:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(min(root.level or level, level))
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    root.addHandler(handler)
    if not any(
        isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
        for h in root.handlers
    ):
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(logging.WARNING)
        stream.setFormatter(logging.Formatter("rsgui: %(levelname)s: %(message)s"))
        root.addHandler(stream)
    _installed_file = path
    return path


def describe_exception(exc: BaseException) -> str:
    """One line for the user: the message (which names the file for our errors), or the type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) < 400 else text[:397] + "…"


def install_excepthook(show: Callable[[str], None]) -> None:
    """Log uncaught exceptions with their trace and show a one-line message; keep running.

    ``show`` is called on the GUI thread (exceptions of other threads are passed over by a queued
    Qt signal)."""
    from PySide6.QtCore import QObject, Signal

    class _Relay(QObject):
        message = Signal(str)

    relay = _Relay()
    relay.message.connect(show)
    log = logging.getLogger("rsgui.uncaught")

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("Uncaught exception", exc_info=(exc_type, exc, tb))
        try:
            relay.message.emit(
                f"Unexpected error: {describe_exception(exc)} (details in {log_file_path()})"
            )
        except Exception:  # during shutdown
            pass

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not None and args.exc_value is not None:
            hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
    install_excepthook._relay = relay  # type: ignore[attr-defined]  # keep it alive
