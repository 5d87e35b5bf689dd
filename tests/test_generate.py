"""Generating labelled tiles: arrays, interpolation, GeoTIFF folders and the command line."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from rsgui.cli import main
from rsgui.progress import drive
from training.cgan import CGANConfig
from training.train_cgan import GANData, TrainConfig, train_cgan

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

MS10 = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
RGB = ("B04", "B03", "B02")


@pytest.fixture(scope="module", params=["rgb", "ms10"])
def gan_ckpt(request, tmp_path_factory):
    bands = RGB if request.param == "rgb" else MS10
    rng = np.random.default_rng(0)
    data = GANData(
        rng.random((8, len(bands), 16, 16), dtype=np.float32),
        np.array([0, 1, 2] * 2 + [0, 1]),
        ("Forest", "River", "SeaLake"),
        bands,
        {"clip": 4095.0, "divisor": 4095.0},
    )
    out = tmp_path_factory.mktemp("gan") / "gan.safetensors"
    cfg = CGANConfig(kind="acgan", image_size=16, width=0.125)
    return drive(train_cgan(data, out, cfg, TrainConfig(steps=2, batch_size=4)))


def test_generate_array(gan_ckpt):
    from training.generate import generate, load

    g = load(gan_ckpt)
    x = generate(g, "River", 5, seed=3)
    assert x.shape == (5, len(g.band_names), 16, 16) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(x, generate(gan_ckpt, "River", 5, seed=3))
    assert not np.array_equal(x, generate(g, "River", 5, seed=4))
    assert generate(g, "River", 0).shape[0] == 0


def test_unknown_class_lists_classes(gan_ckpt):
    from training.generate import generate

    with pytest.raises(ValueError, match="Forest, River, SeaLake"):
        generate(gan_ckpt, "Desert", 2)


def test_interpolate_endpoints(gan_ckpt):
    from training.generate import interpolate, load, random_noise

    g = load(gan_ckpt)
    z0, z1 = random_noise(g, 0), random_noise(g, 1)
    path = interpolate(g, "Forest", z0, z1, np.linspace(0, 1, 5))
    assert path.shape[0] == 5
    np.testing.assert_allclose(interpolate(g, "Forest", z0, z1, 0.0), path[0], atol=1e-6)
    np.testing.assert_allclose(interpolate(g, "Forest", z0, z1, 1.0), path[-1], atol=1e-6)
    assert interpolate(g, "Forest", z0, z1, 0.5).ndim == 3


@pytest.mark.parametrize("class_name,n", [("SeaLake", 3), ("all", 2)])
def test_cli_writes_labelled_geotiffs(gan_ckpt, tmp_path, class_name, n):
    from training.generate import generate, load

    g = load(gan_ckpt)
    out = tmp_path / "gen"
    assert (
        main(
            [
                "generate",
                "--model",
                str(gan_ckpt),
                "--class",
                class_name,
                "--n",
                str(n),
                "--out",
                str(out),
                "--seed",
                "7",
            ]
        )
        == 0
    )
    classes = list(g.classes) if class_name == "all" else [class_name]
    assert sorted(p.name for p in out.iterdir()) == sorted(classes)
    for c in classes:
        files = sorted((out / c).iterdir())
        assert len(files) == n and all(f.suffix == ".tif" for f in files)
        with rasterio.open(files[0]) as src:
            assert src.count == len(g.band_names)
            assert src.descriptions == g.band_names
            assert src.dtypes[0] == "uint16"
            assert (src.height, src.width) == (16, 16)
            dn = src.read()
        expected = generate(g, c, n, seed=7)[0]
        np.testing.assert_allclose(dn / 4095.0, expected, atol=0.5 / 4095 + 1e-6)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_cli_unknown_class(gan_ckpt, tmp_path, capsys):
    rc = main(
        [
            "generate",
            "--model",
            str(gan_ckpt),
            "--class",
            "Desert",
            "--n",
            "1",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "Desert" in err and "Forest, River, SeaLake" in err
    assert not (tmp_path / "x").exists()


def test_cli_refuses_non_gan(tmp_path, capsys):
    bogus = tmp_path / "m.safetensors"
    bogus.write_bytes(b"not a model")
    assert (
        main(
            [
                "generate",
                "--model",
                str(bogus),
                "--class",
                "A",
                "--n",
                "1",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "m.safetensors" in capsys.readouterr().err
