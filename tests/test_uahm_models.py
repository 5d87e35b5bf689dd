"""Shapes and ranges of every model of unsupervised adversarial hashing."""

from __future__ import annotations

import pytest
import torch

from rsgui.encoders.registry import METHODS, methods_of
from training.uahm import UAHMConfig, build, sample_noise, to_model_range, to_tile_range

torch.set_num_threads(1)


@pytest.mark.parametrize("method", methods_of("uahm"))
@pytest.mark.parametrize("size", [32, 64])
def test_model_shapes_and_ranges(method, size):
    channels = 3 if method == "gan-rgb" else 10
    cfg = UAHMConfig(method=method, bits=12, channels=channels, image_size=size, width=0.125,
                     **METHODS[method].config)  # fmt: skip
    g, d = build(cfg)
    x = torch.rand(4, channels, size, size) * 2 - 1
    logit, h = d(x)
    assert h.shape == (4, 12)
    if method == "dhnn-ms":
        assert g is None and logit is None
    else:
        assert logit.shape == (4,)
        fake = g(sample_noise(4, 12, torch.Generator().manual_seed(0)))
        assert fake.shape == (4, channels, size, size)
        assert fake.min() >= -1 and fake.max() <= 1  # tanh
    if method in ("uahm", "dhnn-ms"):
        assert h.abs().max() < 1  # tanh hash
    else:
        assert (h >= 0).float().mean() > 0 and h.min() > -1  # leaky features: small negatives


def test_full_size_method_layers():
    cfg = UAHMConfig(method="uahm", bits=64, channels=10)
    g, d = build(cfg)
    # the method's Table 5.4: generator 4x4x512 -> ... -> 64x64xc; discriminator flatten 8x8x256
    assert g.fc.out_features == 4 * 4 * 512
    assert [m.out_channels for m in g.up if isinstance(m, torch.nn.ConvTranspose2d)] == [
        256, 128, 64, 10
    ]  # fmt: skip
    assert d.fc1[0].in_features == 8 * 8 * 256 and d.fc1[0].out_features == 1024
    convs = [m for m in d.body if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 1, 2, 1, 2]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 256]


def test_noise_is_uniform_in_range():
    z = sample_noise(1000, 8, torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1 and z.mean().abs() < 0.05


def test_range_maps_are_inverse():
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(to_tile_range(to_model_range(x)), x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"adversarial": False, "binary": False},  # neither a GAN nor a hash: nothing to learn
        {"image_size": 48},
        {"variant": "other"},
        {"bits": 0},
    ],
)
def test_bad_config_refused(kwargs):
    with pytest.raises(ValueError):
        UAHMConfig(**kwargs)


def test_config_round_trip():
    cfg = UAHMConfig(method="gan-ms", bits=16, width=0.5, variant="improved",
                     **METHODS["gan-ms"].config)  # fmt: skip
    assert UAHMConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg
