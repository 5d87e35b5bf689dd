"""Training panel driven as a user would: choose a method, start, pause, resume, cancel, index."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from PySide6.QtCore import Qt  # noqa: E402

from rsgui.encoders.registry import METHODS  # noqa: E402


@pytest.fixture(scope="module")
def archive_copy(copy_archive):
    """A private copy: the panel writes models and indexes inside the archive."""
    return copy_archive("train")


@pytest.fixture
def panel(make_state, show, archive_copy):
    from rsgui.app.panels.training import TrainingPanel

    w = show(TrainingPanel(make_state(archive_copy, reference=False)))
    yield w
    w.shutdown()


def choose(combo, data) -> None:
    i = combo.findData(data)
    assert i >= 0, data
    combo.setCurrentIndex(i)


@pytest.fixture
def set_run(qtbot, panel, tiny_gan):
    """``set_run(method, out, steps, batch=8, bits=None)``: type a run into the panel."""

    def run(method, out, steps, batch=8, bits=None):
        _set_run(qtbot, panel, tiny_gan, method, out, steps, batch, bits)

    return run


def _set_run(qtbot, panel, tiny_gan, method, out, steps, batch, bits):
    choose(panel.method, method)
    panel.steps.clear()
    qtbot.keyClicks(panel.steps, str(steps))
    panel.batch.clear()
    qtbot.keyClicks(panel.batch, str(batch))
    if bits is not None:
        choose(panel.bits, bits)
    panel.out.clear()
    qtbot.keyClicks(panel.out, str(out))
    panel.extra_options = tiny_gan if METHODS[method].family == "cgan" else {}


def loss_curves(panel):
    return {c.name(): c for c in panel.loss_plot.getPlotItem().listDataItems()}


@pytest.mark.parametrize("method", list(METHODS))
def test_method_choice_sets_the_options(panel, method):
    choose(panel.method, method)
    spec = METHODS[method]
    assert [panel.bands.itemData(i) for i in range(panel.bands.count())] == list(spec.band_sets)
    assert panel.bands.currentData() == spec.default_bands
    assert panel.bits.isEnabled() == spec.uses_bits
    assert panel.augment.isVisibleTo(panel) == (spec.family == "deephash")
    suffix = ".npz" if method == "spectral" else ".safetensors"
    assert panel.out.text().endswith(suffix) and method in panel.out.text()


def test_devices_listed_cpu_included(panel):
    ids = [panel.device.itemData(i) for i in range(panel.device.count())]
    assert ids[-1] == "cpu"


def test_tiny_run_draws_loss_curves_and_lists_checkpoint(qtbot, panel, tmp_path, set_run):
    out = tmp_path / "models" / "g.safetensors"
    set_run("cdcgan", out, steps=3)
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    assert panel.running and not panel.start_btn.isEnabled() and panel.cancel_btn.isEnabled()
    assert panel.wait(60)
    curves = loss_curves(panel)
    assert set(curves) == {"d_adv", "d_real", "g_adv"}
    assert all(len(c.getData()[0]) == 3 for c in curves.values())
    legend = [label.text for _s, label in panel.loss_plot.getPlotItem().legend.items]
    assert sorted(legend) == sorted(curves)
    assert panel.progress.value() == 3 and panel.progress.maximum() == 3
    assert panel.result is not None and not panel.result.cancelled
    assert panel.checkpoint_names() == ["g.safetensors"]
    assert "Finished" in panel.rate.text()
    assert panel.start_btn.isEnabled() and not panel.cancel_btn.isEnabled()
    panel._reset_curves()
    assert loss_curves(panel) == {}
    assert panel.select_checkpoint("g.safetensors")  # a past run's curves, from its sidecar
    assert {k: len(c.getData()[0]) for k, c in loss_curves(panel).items()} == {
        "d_adv": 3,
        "d_real": 3,
        "g_adv": 3,
    }
    assert "g.safetensors" in panel.loss_plot.getPlotItem().titleLabel.text


def test_cancel_stops_the_worker_and_keeps_the_checkpoint(qtbot, panel, tmp_path, set_run):
    from training.checkpoint import load_checkpoint

    out = tmp_path / "c.safetensors"
    set_run("cdcgan", out, steps=5000)
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel._last_step >= 2, timeout=60_000)
    qtbot.mouseClick(panel.cancel_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    assert panel.result.cancelled and "Cancelled" in panel.rate.text()
    _, meta = load_checkpoint(out, "cdcgan")
    assert 2 <= meta["step"] < 5000
    assert panel.checkpoint_names() == ["c.safetensors"]


def test_pause_holds_the_run_and_resume_continues(qtbot, panel, tmp_path, set_run):
    set_run("cdcgan", tmp_path / "p.safetensors", steps=5000)
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel._last_step >= 1, timeout=60_000)
    qtbot.mouseClick(panel.pause_btn, Qt.MouseButton.LeftButton)
    assert panel.paused and panel.pause_btn.text() == "Resume"
    qtbot.waitUntil(lambda: "Paused at step" in panel.rate.text(), timeout=30_000)
    held = panel._last_step
    qtbot.wait(300)  # the worker sleeps between steps; the window keeps answering
    assert panel._last_step == held and panel.running
    qtbot.mouseClick(panel.pause_btn, Qt.MouseButton.LeftButton)
    assert not panel.paused and panel.pause_btn.text() == "Pause"
    qtbot.waitUntil(lambda: panel._last_step > held, timeout=60_000)
    qtbot.mouseClick(panel.cancel_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    assert panel.result.cancelled


def test_spectral_method_writes_an_index_the_app_finds(qtbot, panel, archive_copy):
    choose(panel.method, "spectral")
    choose(panel.bits, 16)
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    assert panel.result.is_index and panel.result.path.is_file()
    assert panel.result.path in [e.path for e in panel.state.indexes]


def test_build_index_from_a_finished_model(qtbot, panel, tmp_path, set_run):
    out = tmp_path / "models" / "dh.safetensors"
    set_run("deephash", out, steps=2, batch=12, bits=16)
    choose(panel.bands, "ms10")
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(120)
    assert not panel.error.isVisibleTo(panel), panel.error.text()
    assert panel.select_checkpoint("dh.safetensors")
    assert panel.index_btn.isEnabled()
    qtbot.mouseClick(panel.index_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    assert "Index written" in panel.rate.text(), panel.error.text()
    entry = [e for e in panel.state.indexes if e.path.stem == "dh"]
    assert entry and entry[0].method == "deephash" and entry[0].bits == 16


def test_a_generator_model_cannot_be_indexed(qtbot, panel, tmp_path, set_run):
    out = tmp_path / "g2.safetensors"
    set_run("acgan", out, steps=1)
    qtbot.mouseClick(panel.start_btn, Qt.MouseButton.LeftButton)
    assert panel.wait(60)
    assert panel.select_checkpoint("g2.safetensors")
    assert not panel.index_btn.isEnabled() and panel.resume_btn.isEnabled()
    assert json.loads(out.with_suffix(".json").read_text())["method"] == "acgan"


def test_failure_is_shown_in_the_panel(qtbot, panel, tmp_path, set_run):
    (tmp_path / "bad.safetensors").write_text("no")
    (tmp_path / "bad.json").write_text(
        json.dumps({"format": "rsgui-checkpoint", "method": "cdcgan"})
    )
    set_run("cdcgan", tmp_path / "bad.safetensors", steps=2)
    panel.start(resume=tmp_path / "bad.safetensors")
    assert panel.wait(60)
    assert panel.error.isVisibleTo(panel) and "bad.safetensors" in panel.error.text()
    assert panel.start_btn.isEnabled()


def test_without_an_archive_nothing_starts(qtbot, make_state):
    from rsgui.app.panels.training import TrainingPanel

    w = TrainingPanel(make_state())
    qtbot.addWidget(w)
    assert not w.start_btn.isEnabled() and "Open an archive" in w.hint.text()
    w.start()
    assert w.task is None and "Open an archive" in w.error.text()
