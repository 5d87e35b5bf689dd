"""The event loop keeps running while an index is built in a worker.

A 10 ms QTimer records the longest gap between its ticks while the spectral index of a demo
archive is fitted and encoded in a worker (and the browser renders thumbnails). The figure is
printed (run with ``-s``); the assertion is deliberately loose, timing on a shared machine varies.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer

from rsgui.app.panels.browser import BrowserPanel
from rsgui.services.indexing import spectral_index_job


def test_event_loop_never_stalls_while_indexing(qtbot, make_state, show, tmp_path):
    from rsgui.demo import make_demo_archive

    root = make_demo_archive(tmp_path / "arch", n_per_class=12)
    state = make_state(root)
    browser = show(BrowserPanel(state), (900, 700))

    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    qtbot.wait(100)
    gaps.clear()
    last[0] = time.perf_counter()
    started = time.perf_counter()
    done = []
    task = state.tasks.start(
        spectral_index_job, state.archive, 64, name="Build", on_returned=done.append
    )
    qtbot.waitUntil(lambda: not state.tasks.active, timeout=120_000)
    elapsed = time.perf_counter() - started
    timer.stop()
    browser.cache.shutdown()

    assert task.state == "done" and done and done[0].path.is_file()
    worst = max(gaps)
    print(
        f"\nindexing {len(state.archive)} tiles took {elapsed:.2f} s in a worker; "
        f"{len(gaps)} timer ticks, worst event-loop gap {worst * 1000:.0f} ms, "
        f"median {sorted(gaps)[len(gaps) // 2] * 1000:.0f} ms"
    )
    assert len(gaps) > 5, "the timer kept firing during the build"
    assert worst < 2.0
