"""Conditional GANs: shapes, conditioning, checkpoint/resume/cancel of the training loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rsgui.progress import drive
from training.cgan import CGANConfig, Discriminator, Generator, sample_noise
from training.checkpoint import load_checkpoint
from training.train_cgan import GANData, TrainConfig, build_models, train_cgan

torch.set_num_threads(1)

RGB = ("B04", "B03", "B02")


def _data(n=16, size=16, channels=3, seed=0) -> GANData:
    """Two trivially separable classes: dark tiles (0.1) and bright tiles (0.9)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    px = np.where(labels[:, None, None, None] == 0, 0.1, 0.9) + rng.normal(
        0, 0.02, (n, channels, size, size)
    )
    bands = RGB if channels == 3 else tuple(f"B{i:02d}" for i in range(1, channels + 1))
    return GANData(
        px.astype(np.float32),
        labels.astype(np.int64),
        ("Dark", "Bright"),
        bands,
        {"clip": 4095, "divisor": 4095},
    )


@pytest.mark.parametrize("method", ["cdcgan", "acgan"])
@pytest.mark.parametrize("channels", [3, 10])
@pytest.mark.parametrize("size", [32, 64])
def test_shapes(method, channels, size):
    cfg = CGANConfig(kind=method, n_classes=5, channels=channels, image_size=size, width=0.125)
    g, d = Generator(cfg), Discriminator(cfg)
    y = torch.tensor([0, 1, 4])
    x = g(sample_noise(3, cfg.z_dim), y)
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    logit, cls = d(x, y)
    assert logit.shape == (3,)
    if method == "acgan":
        assert cls.shape == (3, 5)
    else:
        assert cls is None
        with pytest.raises(ValueError):
            d(x)


def test_method_sized_networks():
    """The method's layer sizes (Figure 4.4) at width 1."""
    cfg = CGANConfig(kind="cdcgan", n_classes=10, channels=3)
    g, d = Generator(cfg), Discriminator(cfg)
    assert g.fc.out_features == 4 * 4 * 512
    convs = [m for m in d.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256]
    assert [c.stride[0] for c in convs] == [2, 1, 2, 1, 2]
    assert convs[0].in_channels == 13  # 3 bands + 10 one-hot channels
    assert d.fc[0].in_features == 8 * 8 * 256
    acgan = Discriminator(CGANConfig(kind="acgan"))
    assert acgan.out.out_features == 11 and acgan.convs[0].in_channels == 3


def test_bad_config():
    with pytest.raises(ValueError):
        CGANConfig(kind="wgan")
    old = CGANConfig.from_dict({"method": "acgan", "image_size": 16})  # before the rename
    assert old.kind == "acgan" and old.auxiliary_classifier
    with pytest.raises(ValueError):
        CGANConfig(image_size=48)


# The cDCGAN's discriminator must learn the label/image interaction from its input channels, so it
# needs a wider network than ACGAN, whose auxiliary classifier conditions it directly.
@pytest.mark.parametrize("method,size,width", [("cdcgan", 16, 0.5), ("acgan", 8, 0.5)])
def test_conditioning_follows_label(tmp_path, method, size, width):
    """After a short training on dark vs bright tiles the class decides the brightness."""
    data = _data(n=32, size=size)
    cfg = CGANConfig(kind=method, image_size=size, width=width)
    # a higher learning rate than the method's so that a few seconds of training suffice
    tc = TrainConfig(steps=150, batch_size=32, lr=1e-3, checkpoint_every=0, augment=False)
    path = drive(train_cgan(data, tmp_path / f"{method}.safetensors", cfg, tc))
    from training.generate import generate

    dark = generate(path, "Dark", 32, seed=1).mean()
    bright = generate(path, "Bright", 32, seed=1).mean()
    assert bright - dark > 0.3, (dark, bright)


def test_checkpoint_sidecar(tmp_path):
    data = _data()
    cfg = CGANConfig(kind="acgan", image_size=16, width=0.125)
    out = tmp_path / "g.safetensors"
    progress = []
    assert drive(train_cgan(data, out, cfg, TrainConfig(steps=3, batch_size=8)),
                        progress.append) == out  # fmt: skip
    assert [p.done for p in progress] == [1, 2, 3]
    last = progress[-1]
    assert last.total == 3 and last.values and last.rate is not None and last.eta_s is not None
    tensors, meta = load_checkpoint(out, "acgan")
    assert meta["bits"] == 0 and meta["step"] == 3
    assert meta["classes"] == ["Dark", "Bright"] and meta["band_names"] == list(RGB)
    assert meta["normalisation"] == {"clip": 4095, "divisor": 4095}
    assert meta["config"]["n_classes"] == 2 and meta["config"]["channels"] == 3
    assert any(k.startswith("G.") for k in tensors) and any(k.startswith("optD.") for k in tensors)
    assert json.loads(out.with_suffix(".json").read_text())["method"] == "acgan"
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_cancel_then_resume_matches_uninterrupted(tmp_path):
    data = _data()
    cfg = dict(kind="cdcgan", image_size=16, width=0.125)
    straight = tmp_path / "straight.safetensors"
    drive(train_cgan(data, straight, CGANConfig(**cfg), TrainConfig(steps=4, batch_size=8)))

    part = tmp_path / "part.safetensors"
    it = train_cgan(data, part, CGANConfig(**cfg), TrainConfig(steps=4, batch_size=8))
    next(it), next(it)
    it.close()  # cancel after two steps: the generator writes its checkpoint
    assert load_checkpoint(part)[1]["step"] == 2
    resumed = drive(
        train_cgan(data, part, CGANConfig(**cfg), TrainConfig(steps=4, batch_size=8), resume=part)
    )
    a, meta = load_checkpoint(straight)
    b, meta_b = load_checkpoint(resumed)
    assert meta_b["step"] == 4
    for k in a:
        if k.startswith("G."):
            torch.testing.assert_close(a[k], b[k], msg=k)


def test_resume_refuses_other_bands(tmp_path):
    out = tmp_path / "g.safetensors"
    cfg = CGANConfig(kind="cdcgan", image_size=16, width=0.125)
    drive(train_cgan(_data(), out, cfg, TrainConfig(steps=1, batch_size=4)))
    with pytest.raises(ValueError, match="bands"):
        next(train_cgan(_data(channels=10), out, cfg, TrainConfig(steps=2), resume=out))


def test_build_models_initialisation():
    g, _ = build_models(CGANConfig(image_size=16, width=0.125))
    w = g.fc.weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.005


def test_cli_train_gan_then_deephash_with_generated_tiles(demo_archive, tmp_path, capsys):
    from rsgui.cli import main

    gan = tmp_path / "acgan.safetensors"
    args = ["train", str(demo_archive), "--method", "acgan", "--bands", "ms10", "--out", str(gan)]
    assert main([*args, "--steps", "2", "--batch-size", "4"]) == 0
    _, meta = load_checkpoint(gan, "acgan")
    assert meta["step"] == 2 and len(meta["band_names"]) == 10 and len(meta["classes"]) == 10
    assert main([*args, "--steps", "3", "--batch-size", "4", "--resume", str(gan)]) == 0
    assert load_checkpoint(gan)[1]["step"] == 3

    dh = tmp_path / "dh.safetensors"
    rc = main(
        ["train", str(demo_archive), "--method", "deephash", "--bands", "ms10", "--bits", "16",
         "--out", str(dh), "--steps", "2", "--batch-size", "12", "--augment", str(gan), "--n-generated", "20"]
    )  # fmt: skip
    assert rc == 0
    _, meta = load_checkpoint(dh, "deephash")
    assert (
        meta["n_generated"] == 20 and meta["augment"] == "acgan.safetensors" and meta["bits"] == 16
    )
    rc = main(
        ["train", str(demo_archive), "--method", "cdcgan", "--bands", "all", "--out", str(gan)]
    )
    assert rc == 2 and "rgb or ms10" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # spectral is not trained: not a choice of the command
        main(["train", str(demo_archive), "--method", "spectral", "--out", str(gan)])


@pytest.mark.parametrize("rescale", [True, False])
def test_band_stretch_is_undone_by_generate(tmp_path, rescale):
    """Dark reflectances are stretched for training and scaled back when generating."""
    from training.generate import generate

    data = _data()
    data.pixels = data.pixels * 0.2  # values about 0.02 and 0.18
    out = tmp_path / "g.safetensors"
    cfg = CGANConfig(kind="cdcgan", image_size=16, width=0.125)
    tc = TrainConfig(steps=1, batch_size=4, rescale=rescale)
    drive(train_cgan(data, out, cfg, tc))
    scale = load_checkpoint(out)[1]["pixel_scale"]
    if rescale:
        assert scale == pytest.approx([0.18] * 3, abs=0.03)
        assert generate(out, "Dark", 4).max() <= max(scale) + 1e-6
    else:
        assert scale == [1.0, 1.0, 1.0]
