"""Samples panel driven as a user would: open a model, pick a class, generate, interpolate, save."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from PySide6.QtCore import Qt  # noqa: E402

from rsgui.progress import drive  # noqa: E402
from rsgui.services.training import train_job  # noqa: E402


@pytest.fixture(scope="module")
def gan(demo_archive, tmp_path_factory, tiny_gan):
    out = tmp_path_factory.mktemp("samples") / "tiny-ms.safetensors"
    job = train_job(demo_archive, "cdcgan", out, bands="ms10", steps=2, batch_size=8,
                    device="cpu", **tiny_gan)  # fmt: skip
    return drive(job).path


@pytest.fixture
def panel(make_state, show, demo_archive):
    from rsgui.app.panels.samples import SamplesPanel

    w = show(SamplesPanel(make_state(demo_archive, reference=False)))
    yield w
    w.shutdown()


@pytest.fixture
def loaded(panel, gan):
    panel.load_model(gan)  # what the Open… dialog does with the chosen file
    assert panel.wait(30)
    return panel


def icon_rgb(panel, row: int) -> np.ndarray:
    image = panel.grid.item(row).icon().pixmap(16, 16).toImage()
    return np.array([[image.pixelColor(x, y).getRgb()[:3] for x in range(16)] for y in range(16)])


def test_model_classes_fill_the_class_choice(loaded, demo_archive):
    from rsgui.archive import Archive

    classes = [loaded.class_combo.itemText(i) for i in range(loaded.class_combo.count())]
    assert classes == list(Archive.open(demo_archive).classes)
    assert "10 bands" in loaded.model_info.text()
    assert loaded.generate_btn.isEnabled() and not loaded.error.isVisibleTo(loaded)


@pytest.mark.parametrize("n", [1, 6])
def test_generate_shows_n_samples(qtbot, loaded, n):
    loaded.class_combo.setCurrentIndex(3)
    loaded.count.clear()
    qtbot.keyClicks(loaded.count, str(n))
    qtbot.mouseClick(loaded.generate_btn, Qt.MouseButton.LeftButton)
    assert loaded.wait(30)
    assert loaded.grid.count() == n and len(loaded.samples) == n
    assert loaded.samples.class_name == loaded.class_combo.itemText(3)
    assert not loaded.preview.pixmap().isNull()


def test_new_samples_draw_a_new_seed(qtbot, loaded):
    qtbot.mouseClick(loaded.generate_btn, Qt.MouseButton.LeftButton)
    assert loaded.wait(30)
    first, seed = loaded.samples.pixels.copy(), loaded.seed.value()
    qtbot.mouseClick(loaded.new_btn, Qt.MouseButton.LeftButton)
    assert loaded.wait(30)
    assert loaded.seed.value() != seed
    assert not np.array_equal(first, loaded.samples.pixels)
    loaded.seed.setValue(seed)
    qtbot.mouseClick(loaded.generate_btn, Qt.MouseButton.LeftButton)
    assert loaded.wait(30)
    assert np.array_equal(first, loaded.samples.pixels)


def test_interpolation_slider_walks_between_seeds(qtbot, loaded):
    loaded.n_frames.setValue(5)
    loaded.seed_b.setValue(9)
    qtbot.mouseClick(loaded.interp_btn, Qt.MouseButton.LeftButton)
    assert loaded.wait(30)
    assert loaded.slider.maximum() == 4 and len(loaded.frames) == 5
    loaded.slider.setValue(4)
    assert loaded.slider_label.text() == "t = 1.00"
    assert "seed 0 → 9" in loaded.preview_caption.text()


def test_views_offer_composites_and_single_bands(qtbot, loaded):
    views = [loaded.view.itemText(i) for i in range(loaded.view.count())]
    assert {"True colour", "SWIR", "NDVI", "Band B08", "Band B12"} <= set(views)
    assert "Band B01" not in views  # the model has the ten bands only
    qtbot.mouseClick(loaded.generate_btn, Qt.MouseButton.LeftButton)
    assert loaded.wait(30)
    loaded.view.setCurrentIndex(loaded.view.findText("Band B08"))
    rgb = icon_rgb(loaded, 0)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    loaded.view.setCurrentIndex(loaded.view.findText("True colour"))
    rgb = icon_rgb(loaded, 0)
    assert not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def test_saved_samples_are_labelled_geotiffs(qtbot, loaded, tmp_path):
    import rasterio

    loaded.count.setValue(3)
    qtbot.mouseClick(loaded.generate_btn, Qt.MouseButton.LeftButton)
    assert loaded.wait(30)
    loaded.save(tmp_path)
    assert loaded.wait(30)
    cls = loaded.samples.class_name
    assert len(loaded.saved) == 3 and all(
        p.is_file() and p.parent == tmp_path / cls for p in loaded.saved
    )
    with rasterio.open(loaded.saved[0]) as src:
        assert src.count == 10 and src.descriptions == loaded.info.band_names
    assert "Saved 3 GeoTIFFs" in loaded.status.text()


@pytest.mark.parametrize("kind", ["junk", "no-sidecar", "hashing-model", "missing"])
def test_a_bad_checkpoint_shows_an_error_not_a_crash(qtbot, panel, tmp_path, kind):
    from training.checkpoint import save_checkpoint

    path = tmp_path / f"{kind}.safetensors"
    if kind == "junk":
        path.write_bytes(b"\x00garbage")
        path.with_suffix(".json").write_text(json.dumps({"format": "rsgui-checkpoint",
                                                         "method": "cdcgan"}))  # fmt: skip
    elif kind == "no-sidecar":
        path.write_bytes(b"\x00garbage")
    elif kind == "hashing-model":
        save_checkpoint(path, {"w": torch.zeros(1)}, {"method": "uahm", "band_names": ["B02"],
                                                      "bits": 8, "normalisation": {}})  # fmt: skip
    panel.load_model(path)
    assert panel.wait(30)
    assert panel.error.isVisibleTo(panel) and kind in panel.error.text()
    assert panel.info is None and panel.class_combo.count() == 0
    assert not panel.generate_btn.isEnabled()
    panel.generate()  # still answers, with a message
    assert "checkpoint" in panel.error.text()


def test_models_of_the_archive_folder_are_offered(
    qtbot, make_state, demo_archive, tmp_path, monkeypatch, tiny_gan
):
    from rsgui.app.panels import samples as samples_mod
    from rsgui.app.panels import training as training_mod

    job = train_job(demo_archive, "acgan", tmp_path / "a.safetensors", steps=1, batch_size=8,
                    device="cpu", **tiny_gan)  # fmt: skip
    drive(job)
    monkeypatch.setattr(training_mod, "models_dir", lambda root: tmp_path)
    w = samples_mod.SamplesPanel(make_state(demo_archive, reference=False))
    qtbot.addWidget(w)
    assert [w.model.itemText(i) for i in range(w.model.count())] == ["a.safetensors (acgan)"]
