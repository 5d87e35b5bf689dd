"""Background jobs: every long job runs off the GUI thread, reports progress, and can be cancelled.

The pattern (for every panel)
-----------------------------
Write the long job as a **plain generator** that yields progress and returns its result::

    def evaluate_job(index, k):                       # no Qt in here: runs headless too
        for i, q in enumerate(queries):
            ...                                        # a chunk of work (keep each < ~0.2 s)
            yield Progress(i + 1, len(queries), "queries")   # or a (done, total[, note]) tuple
        return summary                                 # becomes the task's result

    task = state.tasks.start(evaluate_job, index, 20, name="Evaluate",
                             on_returned=self._show, on_progress=None, key="evaluate")
    task.cancel()                                      # stops at the next ``yield``

Cancellation is checked *between yields*, so yield often. A job written with callbacks instead
(``func(..., progress=None, cancel=None)``, e.g. :func:`rsgui.indexing.build_index`) may be passed
as-is: the manager sees that it is not a generator and passes ``progress(done, total, note)`` and
``cancel() -> bool`` keyword arguments; the job should raise :class:`Cancelled` (or simply return)
once ``cancel()`` is true. Callbacks run in the worker thread and are throttled to ~25 Hz.

The same job runs without Qt through :func:`run_sync` (tests, the command line).

Results, errors and progress arrive as Qt signals on the GUI thread. An error without an
``on_error`` handler is logged with its trace and shown in the notification area by
:class:`rsgui.app.state.AppState`. ``key=...`` makes a job exclusive: starting another job with the
same key cancels the older one (e.g. a new search replaces a running one).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, QObject, QThreadPool, Signal

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a job to stop it because the user cancelled."""


@dataclass(frozen=True)
class Progress:
    """What a job yields: ``done`` of ``total`` (``None``: unknown), with an optional note."""

    done: float
    total: float | None = None
    note: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, float(self.done) / float(self.total)))

    @classmethod
    def coerce(cls, value: Any) -> Progress | None:
        """Accept ``Progress``, ``(done, total[, note])``, a number, or a note string."""
        if isinstance(value, Progress):
            return value
        if isinstance(value, tuple) and 1 <= len(value) <= 3:
            return cls(*value)
        if isinstance(value, int | float):
            return cls(value)
        if isinstance(value, str):
            return cls(0, None, value)
        return None


def _ensure_pool() -> None:
    pool = QThreadPool.globalInstance()
    if pool.maxThreadCount() < 4:  # small machines: do not let one job starve another
        pool.setMaxThreadCount(4)


class Task(QObject):
    """One running job. Signals are delivered on the GUI thread.

    ``state`` goes ``running`` -> ``done`` | ``failed`` | ``cancelled``; ``finished`` is always last.
    """

    progressed = Signal(object)  # Progress
    returned = Signal(object)  # the job's return value
    errored = Signal(object)  # the exception
    cancelled = Signal()
    finished = Signal()
    _progress_from_thread = Signal(object)

    def __init__(
        self, name: str, func: Callable, args: tuple, kwargs: dict, key: str | None = None
    ):
        super().__init__()
        from superqt.utils import FunctionWorker, GeneratorWorker

        self.name = name
        self.key = key
        self.state = "running"
        self.result: Any = None
        self.error: BaseException | None = None
        self.progress = Progress(0, None, "")
        self._last_emit = 0.0
        self._progress_from_thread.connect(self._set_progress)
        if inspect.isgeneratorfunction(func):
            self.worker = GeneratorWorker(func, *args, **kwargs)
            self.worker.yielded.connect(self._on_yielded)
            self.worker.aborted.connect(self._on_aborted)
        else:
            params = _accepted_kwargs(func)
            if "progress" in params and "progress" not in kwargs:
                kwargs["progress"] = self._progress_callback
            if "cancel" in params and "cancel" not in kwargs:
                kwargs["cancel"] = lambda: self.worker.abort_requested
            self.worker = FunctionWorker(func, *args, **kwargs)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_errored)
        self.worker.finished.connect(self._on_finished)

    # --- control -------------------------------------------------------------------------
    def start(self) -> Task:
        _ensure_pool()
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop; it does so at its next yield (or ``cancel()`` check)."""
        if self.state == "running":
            self.worker.quit()

    @property
    def is_running(self) -> bool:
        return self.state == "running"

    # --- plumbing ------------------------------------------------------------------------
    def _progress_callback(self, done: float, total: float | None = None, note: str = "") -> None:
        now = time.monotonic()  # worker thread: throttle, then hop to the GUI thread
        if now - self._last_emit >= 0.04 or (total is not None and done >= total):
            self._last_emit = now
            self._progress_from_thread.emit(Progress(done, total, note))

    def _on_yielded(self, value: Any) -> None:
        p = Progress.coerce(value)
        if p is not None:
            self._set_progress(p)

    def _set_progress(self, p: Progress) -> None:
        self.progress = p
        self.progressed.emit(p)

    def _on_returned(self, value: Any) -> None:
        self.result = value
        self.state = "done"
        self.returned.emit(value)

    def _on_errored(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled) or type(exc).__name__ == "Cancelled":
            self._on_aborted()  # also rsgui.indexing.Cancelled and the like
            return
        self.error = exc
        self.state = "failed"
        self.errored.emit(exc)

    def _on_aborted(self) -> None:
        if self.state == "running":
            self.state = "cancelled"
            self.cancelled.emit()

    def _on_finished(self) -> None:
        if self.state == "running":  # a callback job that returned after cancel() went true
            if self.worker.abort_requested:
                self._on_aborted()
        if self.state == "running":
            self.state = "done"
        self.finished.emit()


def _accepted_kwargs(func: Callable) -> set[str]:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return set()
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return {"progress", "cancel"}
    return set(sig.parameters)


class TaskManager(QObject):
    """Starts jobs and keeps the running ones, for the status bar's progress and cancel button."""

    taskStarted = Signal(object)
    taskFinished = Signal(object)
    taskFailed = Signal(object, object)  # task, exception (only when no on_error handler)
    activeChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.active: list[Task] = []

    def start(
        self,
        func: Callable,
        *args: Any,
        name: str = "",
        key: str | None = None,
        on_returned: Callable[[Any], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run ``func(*args, **kwargs)`` in a worker thread (see the module docstring)."""
        if key is not None:
            for other in self.active:
                if other.key == key:
                    other.cancel()
        task = Task(name or getattr(func, "__name__", "job"), func, args, kwargs, key)
        if on_progress:
            task.progressed.connect(on_progress)
        if on_returned:
            task.returned.connect(on_returned)
        if on_cancelled:
            task.cancelled.connect(on_cancelled)
        if on_error:
            task.errored.connect(on_error)
        else:
            task.errored.connect(lambda exc, t=task: self.taskFailed.emit(t, exc))
        task.finished.connect(lambda t=task: self._finished(t))
        if on_finished:
            task.finished.connect(on_finished)
        self.active.append(task)
        self.taskStarted.emit(task)
        self.activeChanged.emit()
        return task.start()

    def _finished(self, task: Task) -> None:
        if task in self.active:
            self.active.remove(task)
        self.taskFinished.emit(task)
        self.activeChanged.emit()

    @property
    def busy(self) -> bool:
        return bool(self.active)

    def cancel_all(self) -> None:
        for task in list(self.active):
            task.cancel()

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Process events until no job runs (bounded). For tests and the screenshot driver."""
        return wait_until(lambda: not self.active, timeout_s)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Run the event loop until ``predicate()`` is true or the time is up; returns the predicate."""
    timer = QElapsedTimer()
    timer.start()
    app = QCoreApplication.instance()
    while not predicate():
        if timer.elapsed() > timeout_s * 1000:
            return bool(predicate())
        if app is not None:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.005)
    return True


def run_sync(job: Callable, *args: Any, on_progress: Callable | None = None, **kwargs: Any) -> Any:
    """Run a job written for :class:`TaskManager` in the calling thread and return its result."""
    if inspect.isgeneratorfunction(job):
        gen: Generator = job(*args, **kwargs)
        while True:
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            if on_progress is not None:
                p = Progress.coerce(value)
                if p is not None:
                    on_progress(p)
    params = _accepted_kwargs(job)
    if "progress" in params and on_progress is not None:
        kwargs.setdefault("progress", lambda d, t=None, n="": on_progress(Progress(d, t, n)))
    return job(*args, **kwargs)


def iter_chunks(seq: Iterable, size: int) -> Iterable[list]:
    """Split work into chunks so a generator job can yield (and be cancelled) between them."""
    chunk: list = []
    for item in seq:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
