"""The one protocol of long jobs: a generator that yields :class:`Progress` and returns its result.

The same job runs headless (:func:`drive`, the command line, tests) and in the application (a
superqt ``GeneratorWorker`` runs it off the GUI thread). Cancelling is closing the generator: the
job sees ``GeneratorExit`` at the ``yield`` it is paused on, cleans up (never a partial file) and
stops, so every job yields often (about every 0.2 s of work at most).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` (``None``: unknown) in ``stage``, with rate, ETA and live values."""

    done: float
    total: float | None = None
    note: str = ""
    stage: str = ""  # what is running: "features", "similarity", "train", "encode", ...
    rate: float | None = None  # items per second
    eta_s: float | None = None
    values: Mapping[str, float] = field(default_factory=dict)  # losses, "map", ... for plots

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, float(self.done) / float(self.total)))


Job = Generator[Progress, None, T]
ProgressFn = Callable[[Progress], None]


def drive(job: Job[T], on_progress: ProgressFn | None = None) -> T:
    """Run ``job`` to its end in this thread; return its value. Closing on error cleans it up."""
    try:
        while True:
            p = next(job)
            if on_progress is not None:
                on_progress(p)
    except StopIteration as stop:
        return stop.value
    finally:
        job.close()


def done_job(value: Any) -> Job[Any]:
    """A job that is already finished: for code paths that have nothing long to do."""
    return value
    yield  # pragma: no cover  (makes this a generator)
