"""The training panel on a real archive: stages, pause / resume, the index offer, and the event
loop's worst gap against the same loop idle.

    QT_QPA_PLATFORM=offscreen python bench/training_panel.py ../shared/data/eurosat-rgb \\
        --method uahm --bands rgb --bits 64 --preset cpu --out /tmp/panel/u.safetensors

The panel is driven as a user would: method, bands, code length and preset chosen, Start
clicked; once a third of the training steps are done, Pause is clicked, the run is watched for
``--pause-s`` seconds (no step may pass), then Resume; at the end the finished model is selected
and "Build index from selected model" clicked. A 10 ms QTimer records every gap of the event
loop. Prints one row per stage (ticks, worst and 99th-percentile gap; ``warm-up`` is the
panel loading the training code when first shown, before any run) and
``ratio_worst_gap_vs_idle=X``: the worst gap from Start to the written index against the worst
gap of the same timer with nothing running.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive")
    ap.add_argument("--method", default="uahm")
    ap.add_argument("--bands", default="rgb")
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=0, help="0: as the preset")
    ap.add_argument("--out", required=True)
    ap.add_argument("--pause-s", type=float, default=5.0)
    ap.add_argument("--timeout-s", type=float, default=3600.0)
    ap.add_argument("--screenshot", default=None, help="save the panel at the end as this PNG")
    args = ap.parse_args()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from rsgui.app.main_window import open_archive_job
    from rsgui.app.panels.training import TrainingPanel
    from rsgui.app.state import AppState
    from rsgui.progress import drive

    app = QApplication.instance() or QApplication([])
    state = AppState()
    t0 = time.perf_counter()
    state.set_archive(*drive(open_archive_job(args.archive)))
    open_s = time.perf_counter() - t0
    panel = TrainingPanel(state)
    panel.resize(1100, 800)
    panel.show()

    stage = ["warm-up"]
    gaps: dict[str, list[float]] = {}
    first_seen: dict[str, float] = {}
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.setdefault(stage[0], []).append(now - last[0])
        last[0] = now

    real_progress = panel._on_progress

    def watch(p) -> None:  # the panel's own handler, plus the stage it reports
        name = "paused" if panel.paused else (p.stage or "preparing")
        if name != stage[0]:
            stage[0] = name
            first_seen.setdefault(name, time.perf_counter())
        real_progress(p)

    panel._on_progress = watch
    timer = QTimer(interval=10)
    timer.timeout.connect(tick)
    timer.start()

    def spin(seconds: float, until=lambda: False) -> bool:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            if until():
                return True
            time.sleep(0.002)
        return until()

    spin(120, lambda: not state.tasks.active)  # the panel loads the training code when shown
    stage[0] = "idle"
    spin(2.0)  # the idle reference
    for combo, value in ((panel.method, args.method), (panel.bands, args.bands),
                         (panel.bits, args.bits), (panel.preset, args.preset)):  # fmt: skip
        i = combo.findData(value)
        if i < 0:
            raise SystemExit(f"the panel offers no {value!r}")
        combo.setCurrentIndex(i)
    panel.steps.setValue(args.steps)
    panel.out.setText(args.out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stage[0] = "preparing"
    panel.start_btn.click()

    total = [0]

    def third_done() -> bool:
        total[0] = panel.progress.maximum() if stage[0] == "train" else 0
        return stage[0] == "train" and panel._last_step >= max(1, total[0] // 3)

    if not spin(args.timeout_s, third_done):
        raise SystemExit(f"no third of the steps within {args.timeout_s} s: {panel.rate.text()}")
    panel.pause_btn.click()
    spin(1.0)  # the step in flight ends
    held_at = panel._last_step
    stage[0] = "paused"
    spin(args.pause_s)
    held = panel._last_step == held_at
    panel.pause_btn.click()
    stage[0] = "train"
    if not spin(args.timeout_s, lambda: not panel.running):
        raise SystemExit("the run did not end")
    train_s = time.perf_counter() - started
    name = Path(args.out).with_suffix(".safetensors").name
    spin(2.5, lambda: panel.select_checkpoint(name))  # the checkpoint list refreshes every 2 s
    offered = panel.select_checkpoint(name) and panel.index_btn.isEnabled()
    stage[0] = "index"
    t_index = time.perf_counter()
    panel.index_btn.click()
    spin(args.timeout_s, lambda: panel.index_task is None and "Index" in panel.rate.text())
    spin(0.5)
    index_s = time.perf_counter() - t_index
    timer.stop()
    if args.screenshot:
        panel.grab().save(args.screenshot)

    print(f"\n{Path(args.archive).name}: {len(state.archive)} tiles, {args.method} {args.bands} "
          f"{args.bits} bits, preset {args.preset}; opened in {open_s:.1f} s")  # fmt: skip
    print(f"run {train_s:.0f} s (pause included), index {index_s:.0f} s; paused at step "
          f"{held_at}: {'held' if held else 'DID NOT HOLD'}; index offered: {offered}; "
          f"{panel.rate.text()}")  # fmt: skip
    print("| stage | ticks | worst gap ms | p99 gap ms |")
    print("| --- | --- | --- | --- |")
    for name, g in gaps.items():
        a = np.asarray(g) * 1000
        print(f"| {name} | {len(a)} | {a.max():.0f} | {np.percentile(a, 99):.0f} |")
    busy = [v for k, g in gaps.items() if k not in ("idle", "warm-up") for v in g]
    idle = max(gaps.get("idle", [0.01]))
    print(f"worst_gap_ms={max(busy) * 1000:.0f}")
    print(f"ratio_worst_gap_vs_idle={max(busy) / idle:.2f}")
    state.tasks.cancel_all()
    state.tasks.wait_idle(10)
    return 0 if held and offered else 1


if __name__ == "__main__":
    raise SystemExit(main())
