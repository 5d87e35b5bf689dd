"""Background jobs of the application, run by superqt's ``GeneratorWorker`` off the GUI thread.

A long job is a plain generator (the protocol of :mod:`rsgui.progress`): it yields
:class:`~rsgui.progress.Progress` and returns its result. Here it runs in a worker thread::

    task = state.tasks.start(evaluate(index, k=20), name="Evaluate", key="evaluate",
                             on_returned=self._show, on_progress=self._progress)
    task.pause(); task.resume()     # the worker holds the job between two yields
    task.cancel()                   # the job is closed at its next yield: its cleanup runs

``start`` takes a generator (a job already made), a generator function and its arguments, or a
plain function (a short step, e.g. reading one file; it runs to its end even when cancelled and
its result is then dropped). Headless code runs the same generators with
:func:`rsgui.progress.drive`.

Results, errors and progress arrive as Qt signals on the GUI thread; progress is thinned to about
25 updates a second (a yield that carries ``values``, such as training losses, or starts a new
stage always gets through). A job raising :class:`rsgui.errors.Cancelled` counts as cancelled. An
error without an ``on_error`` handler is logged and shown in the notification area by
:class:`rsgui.app.state.AppState`. ``key=...`` makes a job exclusive: starting another job with
the same key cancels the older one (a new search replaces a running one).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Generator
from functools import cache
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, QObject, QThreadPool, Signal

from rsgui.errors import Cancelled
from rsgui.progress import Job, Progress

if TYPE_CHECKING:  # superqt costs ~0.1 s at start-up: imported with the first job
    from superqt.utils import FunctionWorker, GeneratorWorker

log = logging.getLogger(__name__)

MIN_INTERVAL_S = 0.04  # at most ~25 progress updates a second reach the GUI thread


def paced(job: Job[Any], min_interval_s: float = MIN_INTERVAL_S) -> Job[Any]:
    """``job`` with its progress thinned for a GUI; closing it closes ``job`` (cleanup runs).

    Kept: the first update of a stage, every update carrying ``values`` (curves need them all),
    the last one of a counted stage, and otherwise one per ``min_interval_s``."""
    last_t = -float("inf")
    last_stage: str | None = None
    try:
        while True:
            try:
                p = next(job)
            except StopIteration as stop:
                return stop.value
            now = time.monotonic()
            if not isinstance(p, Progress):
                keep = True
            else:
                final = p.total is not None and p.done >= p.total
                keep = bool(p.values) or final or p.stage != last_stage
                keep = keep or now - last_t >= min_interval_s
                last_stage = p.stage
            if keep:
                last_t = now
                yield p
    finally:
        job.close()


@cache
def _job_worker() -> type[GeneratorWorker]:
    from superqt.utils import GeneratorWorker

    class JobWorker(GeneratorWorker):
        """A ``GeneratorWorker`` that closes its generator when it stops, whatever stopped it,
        so a cancelled job cleans up in the worker thread (a trainer writes its checkpoint).

        superqt hands back a ``RuntimeError`` raised by the job as the result, and then only
        warns and never reports the end; raised again here, it reaches ``errored`` like any
        other error (``JobError`` is one)."""

        def work(self) -> Any:
            try:
                result = super().work()
            finally:
                self._gen.close()
            if isinstance(result, RuntimeError):
                raise result
            return result

    return JobWorker


def _ensure_pool() -> None:
    pool = QThreadPool.globalInstance()
    if pool.maxThreadCount() < 4:  # small machines: do not let one job starve another
        pool.setMaxThreadCount(4)


class Task(QObject):
    """One running job. Signals are delivered on the GUI thread.

    ``state`` goes ``running`` -> ``done`` | ``failed`` | ``cancelled``; ``finished`` is always last.
    """

    progressed = Signal(object)  # Progress (or whatever the job yielded)
    returned = Signal(object)  # the job's return value
    errored = Signal(object)  # the exception
    cancelled = Signal()
    paused = Signal()
    resumed = Signal()
    finished = Signal()

    def __init__(self, name: str, job: Callable | Generator, args: tuple, kwargs: dict,
                 key: str | None = None) -> None:  # fmt: skip
        super().__init__()
        self.name = name
        self.key = key
        self.state = "running"
        self.result: Any = None
        self.error: BaseException | None = None
        self.progress = Progress(0, None, "")
        self.pausable = inspect.isgenerator(job) or inspect.isgeneratorfunction(job)
        if self.pausable:
            gen = job if inspect.isgenerator(job) else job(*args, **kwargs)
            self.worker: GeneratorWorker | FunctionWorker = _job_worker()(paced, gen)
            self.worker.yielded.connect(self._on_yielded)
            self.worker.aborted.connect(self._on_aborted)
            self.worker.paused.connect(self.paused)
            self.worker.resumed.connect(self.resumed)
        else:
            from superqt.utils import FunctionWorker

            self.worker = FunctionWorker(job, *args, **kwargs)
        self.worker.returned.connect(self._on_returned)
        self.worker.errored.connect(self._on_errored)
        self.worker.finished.connect(self._on_finished)

    # --- control -------------------------------------------------------------------------
    def start(self) -> Task:
        _ensure_pool()
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Stop the job at its next yield and close it (a plain function runs to its end)."""
        if self.state == "running":
            self.worker.quit()

    def pause(self) -> None:
        """Hold the job at its next yield (the worker waits; the window stays responsive)."""
        if self.pausable:
            self.worker.pause()

    def resume(self) -> None:
        if self.pausable:
            self.worker.resume()

    @property
    def is_paused(self) -> bool:
        return self.pausable and self.worker.is_paused

    @property
    def is_running(self) -> bool:
        return self.state == "running"

    # --- from the worker -----------------------------------------------------------------
    def _on_yielded(self, value: Any) -> None:
        if isinstance(value, Progress):
            self.progress = value
        self.progressed.emit(value)

    def _on_returned(self, value: Any) -> None:
        self.result = value
        self.state = "done"
        self.returned.emit(value)

    def _on_errored(self, exc: BaseException) -> None:
        if isinstance(exc, Cancelled):
            self._on_aborted()
            return
        self.error = exc
        self.state = "failed"
        self.errored.emit(exc)

    def _on_aborted(self) -> None:
        if self.state == "running":
            self.state = "cancelled"
            self.cancelled.emit()

    def _on_finished(self) -> None:
        if self.state == "running":  # a plain function whose result was dropped on cancel
            if self.worker.abort_requested:
                self._on_aborted()
            else:
                self.state = "done"
        self.finished.emit()


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
        job: Callable | Generator,
        *args: Any,
        name: str = "",
        key: str | None = None,
        on_returned: Callable[[Any], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_paused: Callable[[], None] | None = None,
        on_resumed: Callable[[], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run ``job`` (a generator, or ``job(*args, **kwargs)``) in a worker thread."""
        if key is not None:
            for other in self.active:
                if other.key == key:
                    other.cancel()
        default = getattr(job, "__name__", "job")
        task = Task(name or default, job, args, kwargs, key)
        for signal, slot in (
            (task.progressed, on_progress),
            (task.returned, on_returned),
            (task.cancelled, on_cancelled),
            (task.paused, on_paused),
            (task.resumed, on_resumed),
        ):
            if slot is not None:
                signal.connect(slot)
        if on_error is not None:
            task.errored.connect(on_error)
        else:
            task.errored.connect(lambda exc, t=task: self.taskFailed.emit(t, exc))
        task.finished.connect(lambda t=task: self._finished(t))
        if on_finished is not None:
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
