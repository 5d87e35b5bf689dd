"""Supervised deep hashing: pretrained features (or a small CNN on ten bands) to binary codes.

The method's network is three dense layers from 2048-d Inception v3 features to ``bits`` sigmoid
outputs; a code bit is 1 where the output exceeds 0.5. The ``ms10`` variant (beyond the method)
feeds the ten 10 m / 20 m bands through a small CNN first, so the hash sees more than RGB.

Losses (all minimised; batch means instead of the method's sums, the scale goes into the weights):
    triplet   mean_i [ ||f(a_i) - f(p_i)||^2 - ||f(a_i) - f(n_i)||^2 + alpha ]_+       (4.9)
    binary    -1/M sum_i ||f(x_i) - 0.5||^2        pushes outputs towards 0 or 1   (4.10)
    balance   1/M sum_i (mean_j f(x_i)_j - 0.5)^2  half the bits of a code set      (4.11)
    total     triplet + beta * binary + gamma * balance                              (4.12)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.common import ConfigMixin


@dataclass
class DeepHashConfig(ConfigMixin):
    bits: int = 32
    bands: str = "rgb"  # rgb: Inception features -> dense layers; ms10: small CNN -> dense layers
    in_features: int = 2048  # Inception v3 pool features
    hidden1: int = 1024
    hidden2: int = 512
    channels: int = 10  # ms10 CNN input bands
    cnn_width: int = 32
    dropout: float = 0.5  # few labelled tiles: the dense layers overfit quickly
    # thesis: the method's network (above); improved: the backbone fine-tuned on the tiles
    # (training.deephash_improved), which reads tiles of any band set with B04/B03/B02 in it
    variant: str = "thesis"
    input_size: int = 64  # improved: the backbone's input side
    rgb_index: list = field(default_factory=lambda: [0, 1, 2])  # improved: B04/B03/B02 positions


class HashHead(nn.Module):
    """Three dense layers, sigmoid output: (B, D) -> (B, bits) in (0, 1)."""

    def __init__(self, cfg: DeepHashConfig, in_features: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, cfg.hidden1),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden1, cfg.hidden2),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden2, cfg.bits),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class SpectralCNN(nn.Module):
    """A small CNN over all input bands: (B, C, H, W) -> (B, 8w) globally pooled features."""

    def __init__(self, channels: int, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _block(channels, w, 1),  # (B, w, H, W): a learned band mixing first
            _block(w, w, 1),
            _block(w, 2 * w, 2),  # (B, 2w, H/2, W/2)
            _block(2 * w, 4 * w, 2),  # (B, 4w, H/4, W/4)
            _block(4 * w, 8 * w, 2),  # (B, 8w, H/8, W/8)
        )
        self.out_features = 8 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(2, 3))


class DeepHashNet(nn.Module):
    """rgb: input is (B, 2048) features; ms10: input is (B, 10, H, W) tiles."""

    def __init__(self, cfg: DeepHashConfig):
        super().__init__()
        self.cfg = cfg
        # input standardisation, set from the training inputs (beyond the method: the dense
        # layers train far better on z-scored features); stored with the weights
        shape = (cfg.channels, 1, 1) if cfg.bands == "ms10" else (cfg.in_features,)
        self.register_buffer("in_mean", torch.zeros(shape))
        self.register_buffer("in_std", torch.ones(shape))
        if cfg.bands == "ms10":
            self.cnn = SpectralCNN(cfg.channels, cfg.cnn_width)
            self.head = HashHead(cfg, self.cnn.out_features)
        else:
            self.cnn = None
            self.head = HashHead(cfg, cfg.in_features)

    def set_standardisation(self, inputs: torch.Tensor) -> None:
        """Per-feature (rgb) or per-band (ms10) mean and std of the training inputs."""
        dims = (0, 2, 3) if inputs.ndim == 4 else (0,)
        self.in_mean.copy_(inputs.mean(dims).reshape(self.in_mean.shape))
        self.in_std.copy_(inputs.std(dims).clamp_min(1e-6).reshape(self.in_std.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.in_mean) / self.in_std
        if self.cnn is not None:
            x = self.cnn(x)
        return self.head(x)  # (B, bits) in (0, 1)


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """Eq. 4.9 averaged over the triplets."""
    d_ap = ((anchor - positive) ** 2).sum(1)
    d_an = ((anchor - negative) ** 2).sum(1)
    return F.relu(d_ap - d_an + margin).mean()


def triplet_loss_all(anchors: torch.Tensor, negatives: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 4.9 over every (anchor, positive, negative) triple of one batch (beyond the method):
    ``anchors`` (A, L) all of one class, ``negatives`` (N, L) of another."""
    d_ap = torch.cdist(anchors, anchors) ** 2  # (A, A)
    d_an = torch.cdist(anchors, negatives) ** 2  # (A, N)
    viol = F.relu(d_ap[:, :, None] - d_an[:, None, :] + margin)  # (A, A, N)
    mask = ~torch.eye(len(anchors), dtype=torch.bool, device=anchors.device)
    return viol[mask].mean()


def binary_loss(f: torch.Tensor) -> torch.Tensor:
    """Eq. 4.10: minus the mean squared distance of each output vector from 0.5."""
    return -((f - 0.5) ** 2).sum(1).mean()


def balance_loss(f: torch.Tensor) -> torch.Tensor:
    """Eq. 4.11: mean over codes of (fraction of the code's outputs - 0.5)^2."""
    return ((f.mean(1) - 0.5) ** 2).mean()


def codes_from_outputs(f: torch.Tensor) -> torch.Tensor:
    """Sigmoid outputs -> index codes, positive where the bit is 1 (the sign carries the bit)."""
    return f - 0.5
