"""The generation service: reproducible samples, interpolation, refused checkpoints and samples
written as a labelled archive through the one GeoTIFF writer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from rsgui.errors import JobError, ModelFileError  # noqa: E402
from rsgui.progress import drive  # noqa: E402
from rsgui.services.generation import (  # noqa: E402
    generation_job,
    interpolation_job,
    read_model_info,
    save_samples,
)
from rsgui.services.training import train_job  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture(scope="module")
def gan(demo_archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "g.safetensors"
    job = train_job(demo_archive, "cdcgan", out, bands="rgb", steps=3, batch_size=8,
                    device="cpu", model={"width": 0.125, "image_size": 16})  # fmt: skip
    return drive(job).path


@pytest.fixture(scope="module")
def classes(demo_archive):
    from rsgui.archive import Archive

    return Archive.open(demo_archive).classes


def test_generation_is_reproducible_and_per_class(gan, classes):
    a = drive(generation_job(gan, classes[0], n=5, seed=3))
    b = drive(generation_job(gan, classes[0], n=5, seed=3))
    c = drive(generation_job(gan, classes[0], n=5, seed=4))
    assert a.pixels.shape == (5, 3, 16, 16) and a.band_names == ("B04", "B03", "B02")
    assert np.array_equal(a.pixels, b.pixels) and not np.array_equal(a.pixels, c.pixels)
    assert 0.0 <= a.pixels.min() and a.pixels.max() <= 1.0
    with pytest.raises(JobError, match="no class 'Moon'"):
        drive(generation_job(gan, "Moon", n=1))


def test_interpolation_ends_at_the_two_seeds(gan, classes):
    cls = classes[2]
    f = drive(interpolation_job(gan, cls, 3, 8, frames=5))
    a = drive(generation_job(gan, cls, n=1, seed=3))
    b = drive(generation_job(gan, cls, n=1, seed=8))
    assert f.pixels.shape[0] == 5
    np.testing.assert_allclose(f.pixels[0], a.pixels[0], atol=1e-5)
    np.testing.assert_allclose(f.pixels[-1], b.pixels[0], atol=1e-5)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a model", "settings file"), (None, "no such model file")],
)
def test_bad_checkpoint_is_refused_with_its_name(tmp_path, content, message):
    path = tmp_path / "broken.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as err:
        read_model_info(path)
    assert "broken" in str(err.value)


def test_a_hashing_checkpoint_is_not_a_generator(tmp_path):
    from training.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "h.safetensors", {"w": torch.zeros(2)},
                           {"method": "deephash", "band_names": ["B04"], "bits": 8,
                            "normalisation": {"clip": 1, "divisor": 1}})  # fmt: skip
    with pytest.raises(ModelFileError, match="h.safetensors.*not a conditional GAN"):
        read_model_info(path)


def test_saved_samples_form_a_labelled_archive(gan, classes, tmp_path):
    import rasterio

    from rsgui.archive import Archive

    cls = classes[1]
    s = drive(generation_job(gan, cls, n=3, seed=1))
    paths = save_samples(s, tmp_path / "extra")
    assert len(paths) == 3 and all(p.parent.name == cls for p in paths)
    with rasterio.open(paths[0]) as src:
        assert src.descriptions == ("B04", "B03", "B02") and src.dtypes[0] == "uint16"
        np.testing.assert_allclose(src.read() / 4095.0, s.pixels[0], atol=1 / 4095)
    arc = Archive.open(tmp_path / "extra", band_names=["B04", "B03", "B02"])
    assert arc.classes == (cls,) and len(arc) == 3
