"""Composite viewer: presets, stretches, histograms, pixel read-out by band name, and bands the
archive lacks greyed out instead of failing."""

from __future__ import annotations

import numpy as np
import pytest

from rsgui.app.models import TileRef
from rsgui.app.panels.viewer import ViewerPanel
from rsgui.bands import COMPOSITES


@pytest.fixture
def viewer(show, state):
    v = show(ViewerPanel(state), (500, 800))
    state.select_tile(state.tile_ref(5))
    return v


def test_selected_tile_is_drawn(viewer, state):
    img = viewer.image_item.image
    assert img is not None and img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert state.archive.records[5].path.rsplit("/", 1)[-1] in viewer.title.text()


@pytest.mark.parametrize("preset", [*COMPOSITES, "NDVI", "NDWI"])
def test_every_preset_draws_something_different(qtbot, viewer, state, preset):
    viewer.apply_preset("True colour")
    viewer.redraw()
    true_colour = viewer.image_item.image.copy()
    assert viewer.apply_preset(preset)
    viewer.redraw()
    c = state.composite
    if preset in COMPOSITES:
        assert c.mode == "rgb" and c.rgb == COMPOSITES[preset]
        assert viewer.preset_combo.currentData() == preset
    else:
        assert c.mode == "index" and c.index == preset
        assert viewer.index_row.isVisibleTo(viewer)
    if preset != "True colour":
        assert not np.array_equal(viewer.image_item.image, true_colour)


def test_stretch_controls_update_the_shared_composite(qtbot, viewer, state):
    viewer.stretch_combo.setCurrentIndex(viewer.stretch_combo.findData("minmax"))
    assert state.composite.stretch == "minmax"
    viewer.stretch_combo.setCurrentIndex(viewer.stretch_combo.findData("fixed"))
    assert viewer.fixed_row.isVisibleTo(viewer) and not viewer.pct_row.isVisibleTo(viewer)
    viewer.fmax_spin.setValue(1234.0)  # debounced
    qtbot.waitUntil(lambda: state.composite.fixed_range[1] == 1234.0, timeout=2000)
    viewer.stretch_combo.setCurrentIndex(viewer.stretch_combo.findData("cumulative"))
    viewer.low_spin.setValue(5.0)
    qtbot.waitUntil(lambda: state.composite.low_pct == 5.0, timeout=2000)


def test_single_band_mode_and_histograms(qtbot, viewer, state):
    viewer.mode_combo.setCurrentIndex(viewer.mode_combo.findData("single"))
    viewer.band_combo.setCurrentText("B8A")
    assert state.composite.mode == "single" and state.composite.band == "B8A"
    viewer.redraw()
    curves = viewer.hist.getPlotItem().listDataItems()
    assert len(curves) == 1
    viewer.apply_preset("True colour")
    viewer.redraw()
    assert len(viewer.hist.getPlotItem().listDataItems()) == 3


def test_pixel_readout_names_every_band(viewer, state):
    raw = state.archive.read_raw(5)
    text = viewer.readout_at(10, 20)
    assert text.startswith("x 20, y 10")
    for i, name in enumerate(state.archive.band_names):
        assert f"{name} {raw[i, 10, 20]:g}" in text
    assert "NDVI" in text
    assert viewer.readout_at(500, 500) == "outside the tile"


def test_bands_the_archive_lacks_are_disabled_not_errors(make_state, show, tmp_path, write_tile):
    root = tmp_path / "rgb"
    write_tile(root / "a.tif", bands=3, dtype="uint8")
    s = make_state(root)
    v = show(ViewerPanel(s))
    s.select_tile(s.tile_ref(0))
    assert v.preset_enabled("True colour")
    for name in ("SWIR", "False-colour infrared", "Agriculture"):
        assert not v.preset_enabled(name)
        assert not v.apply_preset(name)
    assert not v.apply_preset("NDVI")
    assert not v.rgb_combos[0].is_enabled("B08") and v.rgb_combos[0].is_enabled("B04")
    # a composite the tile cannot show (e.g. restored from settings) gives a message, not an error
    s.set_composite(s.composite.with_(rgb=("B12", "B8A", "B04")))
    v.redraw()
    assert v.image_item.image is None
    assert "lacks B12, B8A" in v.message.textItem.toPlainText()


def test_outside_file_and_unreadable_file(qtbot, viewer, state, tmp_path, write_tile):
    other = write_tile(tmp_path / "elsewhere.tif")
    state.select_tile(TileRef(other))
    assert viewer.image_item.image is not None and viewer.raw.shape == (13, 64, 64)
    bad = tmp_path / "bad.tif"
    bad.write_text("nope")
    notes = []
    state.notified.connect(notes.append)
    state.select_tile(TileRef(bad))
    assert viewer.raw is None and "bad.tif" in viewer.error
    assert notes and notes[-1].level == "error" and "bad.tif" in notes[-1].text
