"""The job machinery: jobs run by superqt's GeneratorWorker report progress (thinned), return,
fail into the notification area, pause and resume between yields, and on cancel are closed so
their cleanup runs; the same generators run headless with :func:`rsgui.progress.drive`. Then the
evaluation job the evaluation panel starts, headless."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rsgui.encoders.registry import METHODS
from rsgui.errors import Cancelled, JobError
from rsgui.progress import Progress, drive


# --- the worker pattern ----------------------------------------------------------------------
def slow_job(n, delay=0.01, log=None):
    try:
        for i in range(n):
            time.sleep(delay)
            yield Progress(i + 1, n, "step")
        return "done"
    finally:  # runs when the job ends, fails or is closed on cancel
        if log is not None:
            log.append(threading.current_thread() is not threading.main_thread())


@pytest.fixture
def state(qtbot):
    from rsgui.app.state import AppState

    s = AppState()
    yield s
    s.tasks.cancel_all()
    s.tasks.wait_idle(10)


@pytest.mark.parametrize("as_generator", [False, True])
def test_worker_reports_progress_and_returns(state, as_generator):
    seen, out = [], []
    job, args = (slow_job(10), ()) if as_generator else (slow_job, (10,))
    task = state.tasks.start(job, *args, name="t", on_progress=seen.append, on_returned=out.append)
    assert state.tasks.wait_idle(10)
    assert out == ["done"] and task.result == "done"
    assert task.state == "done" and seen and seen[-1].done == 10 and seen[-1].total == 10


def test_a_plain_function_runs_too(state):
    out = []
    task = state.tasks.start(sum, [1, 2, 3], name="sum", on_returned=out.append)
    assert state.tasks.wait_idle(5)
    assert out == [6] and task.state == "done"


def test_worker_cancel_closes_the_job_in_its_thread(qtbot, state):
    returned, cancelled, cleaned = [], [], []
    task = state.tasks.start(
        slow_job(1000, log=cleaned),
        name="long",
        on_returned=returned.append,
        on_cancelled=lambda: cancelled.append(1),
    )
    qtbot.waitUntil(lambda: task.progress.done >= 2, timeout=5000)
    task.cancel()
    assert state.tasks.wait_idle(5)
    assert task.state == "cancelled" and cancelled == [1] and returned == []
    assert task.progress.done < 1000
    assert cleaned == [True], "the job's cleanup ran once, in the worker thread"


def test_pause_holds_the_job_between_yields_then_resumes(qtbot, state):
    events = []
    task = state.tasks.start(
        slow_job(40),
        name="p",
        on_paused=lambda: events.append("paused"),
        on_resumed=lambda: events.append("resumed"),
    )
    qtbot.waitUntil(lambda: task.progress.done >= 2, timeout=5000)
    task.pause()
    qtbot.waitUntil(lambda: events == ["paused"], timeout=5000)
    assert task.is_paused
    held = task.progress.done
    qtbot.wait(200)
    assert task.progress.done == held < 40, "no step runs while paused"
    task.resume()
    assert state.tasks.wait_idle(10)
    assert events == ["paused", "resumed"] and task.state == "done" and task.result == "done"


def test_cancel_while_paused_stops_waiting(qtbot, state):
    cleaned = []
    task = state.tasks.start(slow_job(1000, log=cleaned), name="p")
    qtbot.waitUntil(lambda: task.progress.done >= 1, timeout=5000)
    task.pause()
    qtbot.waitUntil(lambda: task.is_paused, timeout=5000)
    task.cancel()
    assert state.tasks.wait_idle(5)
    assert task.state == "cancelled" and cleaned == [True]


def test_exclusive_key_cancels_the_older_job(qtbot, state):
    first = state.tasks.start(slow_job, 1000, name="a", key="k")
    qtbot.waitUntil(lambda: first.progress.done >= 1, timeout=5000)
    second = state.tasks.start(slow_job, 3, name="b", key="k")
    assert state.tasks.wait_idle(10)
    assert first.state == "cancelled" and second.state == "done"


def test_failed_job_is_a_notification(state):
    notes = []
    state.notified.connect(notes.append)

    def bad():
        raise OSError("archive/t.tif: permission denied")

    task = state.tasks.start(bad, name="Read")
    assert state.tasks.wait_idle(5)
    assert task.state == "failed" and notes[-1].level == "error"
    assert "Read failed: archive/t.tif: permission denied" == notes[-1].text


def test_an_error_after_some_progress_reaches_on_error(state):
    def work(n):
        for i in range(n):
            yield Progress(i + 1, n, "x")
        raise ValueError("nothing more to do")

    seen, errors = [], []
    task = state.tasks.start(work, 3, on_progress=seen.append, on_error=errors.append)
    assert state.tasks.wait_idle(5)
    assert task.state == "failed" and [str(e) for e in errors] == ["nothing more to do"]
    assert seen[-1].done == 3


def test_a_runtime_error_of_a_job_is_an_error_too(state):
    """superqt treats a RuntimeError from a generator as a deleted worker; JobError is one."""

    def refuses():
        yield Progress(0, None, "checking")
        raise JobError("broken.npz: index metadata file is missing")

    errors = []
    task = state.tasks.start(refuses, on_error=errors.append)
    assert state.tasks.wait_idle(5), "the task ends"
    assert task.state == "failed" and [str(e) for e in errors] == [
        "broken.npz: index metadata file is missing"
    ]


def test_a_job_raising_cancelled_counts_as_cancelled(state):
    def stops():
        yield Progress(1, 2)
        raise Cancelled("the user stopped it")

    cancelled, errors = [], []
    task = state.tasks.start(stops, on_cancelled=lambda: cancelled.append(1),
                             on_error=errors.append)  # fmt: skip
    assert state.tasks.wait_idle(5)
    assert task.state == "cancelled" and cancelled == [1] and errors == []


def test_progress_is_thinned_but_keeps_values_stages_and_the_end(state):
    def chatty():
        for i in range(20_000):
            yield Progress(i + 1, 20_000, stage="read")
        for i in range(5):
            yield Progress(i + 1, 5, stage="train", values={"loss": float(i)})
        return "ok"

    seen = []
    task = state.tasks.start(chatty, on_progress=seen.append)
    assert state.tasks.wait_idle(20)
    assert task.result == "ok"
    reads = [p for p in seen if p.stage == "read"]
    assert len(reads) < 2_000 and reads[0].done == 1 and reads[-1].done == 20_000
    assert [p.values["loss"] for p in seen if p.stage == "train"] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_same_job_runs_headless():
    seen, cleaned = [], []
    assert drive(slow_job(3, 0.0, log=cleaned), seen.append) == "done"
    assert [p.done for p in seen] == [1, 2, 3] and cleaned == [False]


def test_devices_always_offer_the_cpu_last(torch1):
    from rsgui.app.devices import list_devices

    devices = list_devices()
    assert devices[-1].id == "cpu"
    assert all(d.id.startswith("cuda:") for d in devices[:-1])
    assert len(devices) == 1 + (torch1.cuda.device_count() if torch1.cuda.is_available() else 0)


@pytest.fixture(scope="module")
def torch1():
    """torch on one thread (tiny networks), or skip without it."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


# --- jobs the panels start, headless (training and generation: tests/test_services_*.py)
@pytest.fixture(scope="module")
def spectral_index(demo_archive, tmp_path_factory) -> Path:
    from rsgui.services.training import train_job

    out = tmp_path_factory.mktemp("idx") / "spectral-16.npz"
    return drive(train_job(demo_archive, "spectral", out, bands="ms10", bits=16)).path


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_is_offered(method):
    spec = METHODS[method]
    assert spec.default_bands in spec.band_sets
    assert spec.retrieval != spec.generator


def test_evaluation_job_matches_the_evaluation_service(spectral_index):
    from rsgui.index_store import HashIndex
    from rsgui.services.evaluation import evaluate, evaluation_job

    (summary,) = drive(evaluation_job([spectral_index], k=(5, 20), n=(5,)))
    direct = evaluate(HashIndex.load(spectral_index), k=(5, 20), n=(5,))
    assert summary.evaluation.map_retrieved == direct.map_retrieved
    assert summary.evaluation.precision == direct.precision
    np.testing.assert_allclose(summary.evaluation.pr_precision, direct.pr_precision)
    assert summary.name == "spectral-16" and "16 bits" in summary.label


def test_evaluation_job_names_a_bad_file(tmp_path):
    from rsgui.services.evaluation import evaluation_job

    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"junk")
    with pytest.raises(JobError, match="junk"):
        drive(evaluation_job([bad]))


def test_eta_clock_fills_rate_and_eta_per_stage():
    from rsgui.progress import EtaClock, Progress

    t = [0.0]
    clock = EtaClock(lambda: t[0])
    assert clock(Progress(0, 100, stage="features")).eta_s is None  # the stage starts
    t[0] = 10.0
    p = clock(Progress(25, 100, stage="features"))
    assert p.rate == 2.5 and p.eta_s == 30.0
    t[0] = 11.0
    assert clock(Progress(0, 50, stage="similarity")).eta_s is None  # a new stage restarts it
    t[0] = 12.0
    assert clock(Progress(10, 50, stage="similarity")).eta_s == 4.0
    given = clock(Progress(20, 50, stage="similarity", eta_s=99.0))
    assert given.eta_s == 99.0  # a job's own ETA is kept
