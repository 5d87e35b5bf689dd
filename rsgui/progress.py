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


class EtaClock:
    """Fills in rate and ETA of progress that lacks them, from the time since its stage began:
    reading tiles, backbone features and the similarity matrix report only counts, and a user
    waiting for 26,000 tiles wants to know for how long."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        import time

        self._now = clock or time.monotonic
        self._key: tuple | None = None
        self._t0 = 0.0
        self._done0 = 0.0

    def __call__(self, p: Progress) -> Progress:
        from dataclasses import replace

        key = (p.stage, p.total)
        now = self._now()
        if key != self._key or p.done < self._done0:
            self._key, self._t0, self._done0 = key, now, p.done
            return p
        if p.eta_s is not None or not p.total:
            return p
        elapsed = now - self._t0
        moved = p.done - self._done0
        if elapsed <= 0 or moved <= 0:
            return p
        rate = moved / elapsed
        return replace(p, rate=p.rate if p.rate is not None else rate,
                       eta_s=max(0.0, (p.total - p.done) / rate))  # fmt: skip
