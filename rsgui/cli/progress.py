"""A text progress bar on stderr for long commands, redrawn in place at most ten times a second."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Call ``update(done, total, note)`` as work advances; ``close()`` ends the line."""

    def __init__(self, label: str, stream=None, width: int = 30, min_interval: float = 0.1):
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: int | None, note: str = "") -> None:
        now = time.perf_counter()
        if now - self._last < self.min_interval and (total is None or done < total):
            return
        self._last = now
        elapsed = now - self._t0
        if total:
            frac = min(1.0, done / total)
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            eta = elapsed / frac - elapsed if frac > 0 else 0.0
            text = f"\r{self.label} [{bar}] {done}/{total} {elapsed:5.1f}s eta {eta:5.1f}s {note}"
        else:
            text = f"\r{self.label} {done} {elapsed:5.1f}s {note}"
        self.stream.write(text[:160].ljust(80))
        self.stream.flush()
        self._shown = True

    def __call__(self, done: int, total: int | None, note: str = "") -> None:
        self.update(done, total, note)

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StageBars:
    """Drives progress bars from a job's :class:`rsgui.progress.Progress`: one bar per stage,
    labelled ``labels.get(stage, stage)``; call it with each report, ``close()`` at the end."""

    def __init__(self, labels: dict[str, str] | None = None, stream=None):
        self.labels = dict(labels or {})
        self.stream = stream
        self.stage: str | None = None
        self.bar: ProgressBar | None = None

    def __call__(self, p) -> None:
        if self.bar is None or p.stage != self.stage:
            self.close()
            self.stage = p.stage
            self.bar = ProgressBar(self.labels.get(p.stage, p.stage or "work"), self.stream)
        self.bar(int(p.done), None if p.total is None else int(p.total), p.note)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> StageBars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
