"""Unsupervised adversarial hashing models: one generator, one discriminator with three heads.

Shapes for the method's 64x64 tiles (l = code length, c = bands: 3 rgb, 10 ms10):

    Generator      z ~ U[-1, 1]^l -> Linear -> (512, 4, 4) BN ReLU
                   -> ConvT 5x5 s2 -> (256, 8, 8) -> (128, 16, 16) -> (64, 32, 32)  BN ReLU
                   -> ConvT 5x5 s2 -> (c, 64, 64) tanh            (tiles live in [-1, 1] here)
    Discriminator  (c, 64, 64) -> conv 3x3, strides 2,1,2,1,2 -> 32, 64, 128, 256, 256 channels,
                   BN + LeakyReLU(0.2) each -> (256, 8, 8) -> flatten 16384
      gan-rgb/-ms  -> Linear 1024 BN LReLU -> Linear l BN LReLU (= float feature) -> Linear 1
      uahm         -> Linear 1024 BN LReLU -> { Linear l tanh (= hash), Linear 1 }
      dhnn-ms      -> Linear 1024 BN LReLU -> Linear l tanh              (no adversarial part)

On frozen features (``input='features'``, the improved variant) the same three parts work on
the training-free method's standardised vector (D = 1,334 for rgb: backbone 1,280 + band
statistics and histograms) instead of pixels:

    Generator      z ~ U[-1, 1]^l -> Linear hidden BN ReLU -> Linear D      (a fake feature vector)
    Discriminator  (B, D) -> Linear hidden LReLU -> { Linear l tanh (= hash), Linear 1 (source) }

Other power-of-two tile sizes (>= 16) keep the same layer pattern with one fewer or more
up-sampling step; ``width`` scales every channel count for quick runs and tests. The source
output is a logit: the losses use the sigmoid inside a numerically safe BCE-with-logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from training.common import ConfigMixin

VARIANTS = ("thesis", "improved")
INPUTS = ("tiles", "features")


@dataclass
class UAHMConfig(ConfigMixin):
    method: str = "uahm"  # the name stored in checkpoints (the registry's key)
    bits: int = 64  # code / feature length l, also the noise length
    channels: int = 10  # 3 (rgb) or 10 (ms10)
    image_size: int = 64  # power of two >= 16; 64 in the method
    width: float = 1.0  # channel multiplier: 1.0 is the method, smaller for quick runs and tests
    hidden: int = 1024  # first dense layer of the discriminator head
    leak: float = 0.2
    variant: str = "thesis"  # thesis | improved (see training.train_uahm.preset_config)
    adversarial: bool = True  # a generator and a source head (all but dhnn-ms)
    binary: bool = True  # a tanh hash head (uahm, dhnn-ms) rather than a float feature (gan-*)
    input: str = "tiles"  # tiles | features (frozen training-free vectors of feature_dim)
    feature_dim: int = 0  # D of the feature vectors when input == "features"

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"unknown input {self.input!r}; choose {', '.join(INPUTS)}")
        if self.input == "features" and not (self.feature_dim >= 1 and self.binary):
            raise ValueError("a model on features needs feature_dim >= 1 and the hash head")
        if not (self.adversarial or self.binary):
            raise ValueError("a model without the adversarial part needs the binary hash head")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose {', '.join(VARIANTS)}")
        n = math.log2(self.image_size)
        if n != int(n) or self.image_size < 16:
            raise ValueError(f"tile size must be a power of two >= 16, not {self.image_size}")
        if self.bits < 1:
            raise ValueError(f"bits must be positive, got {self.bits}")


def _ch(base: int, width: float) -> int:
    return max(4, int(round(base * width)))


def sample_noise(n: int, dim: int, generator: torch.Generator | None = None, device=None):
    """z ~ U[-1, 1]^dim, drawn on the CPU so a seed gives the same noise on any device."""
    z = torch.rand(n, dim, generator=generator) * 2 - 1
    return z.to(device) if device is not None else z


class Generator(nn.Module):
    def __init__(self, cfg: UAHMConfig):
        super().__init__()
        n_up = int(math.log2(cfg.image_size)) - 2  # 4x4 -> image_size
        chans = [_ch(512 >> k, cfg.width) for k in range(n_up)]  # 512, 256, 128, 64 at 64 px
        self.c0 = chans[0]
        self.fc = nn.Linear(cfg.bits, self.c0 * 16)
        self.bn0 = nn.BatchNorm1d(self.c0 * 16)
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [_up(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        layers += [_up(chans[-1], cfg.channels), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.fc(z)))  # (B, c0*16)
        return self.up(x.view(len(z), self.c0, 4, 4))  # (B, c, S, S) in [-1, 1]


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    # 5x5, stride 2, exact doubling: (H - 1) * 2 - 2 * 2 + 5 + 1 = 2H
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1, bias=False)


class Discriminator(nn.Module):
    """Returns ``(logit, h)``: source logit (B,) or None for dhnn-ms, and h (B, l) — the tanh
    hash for uahm / dhnn-ms, the LeakyReLU feature for gan-*."""

    def __init__(self, cfg: UAHMConfig):
        super().__init__()
        self.cfg = cfg
        chans = [cfg.channels] + [_ch(c, cfg.width) for c in (32, 64, 128, 256, 256)]
        layers: list[nn.Module] = []
        for cin, cout, stride in zip(chans[:-1], chans[1:], (2, 1, 2, 1, 2), strict=True):
            layers += [
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(cfg.leak, inplace=True),
            ]
        self.body = nn.Sequential(*layers)
        flat = chans[-1] * (cfg.image_size // 8) ** 2  # 256 * 8 * 8 at 64 px
        self.fc1 = nn.Sequential(
            nn.Linear(flat, cfg.hidden, bias=False),
            nn.BatchNorm1d(cfg.hidden),
            nn.LeakyReLU(cfg.leak, inplace=True),
        )
        if cfg.binary:
            self.hash = nn.Linear(cfg.hidden, cfg.bits)  # tanh applied in forward
            self.source = nn.Linear(cfg.hidden, 1) if cfg.adversarial else None
        else:
            self.feature = nn.Sequential(
                nn.Linear(cfg.hidden, cfg.bits, bias=False),
                nn.BatchNorm1d(cfg.bits),
                nn.LeakyReLU(cfg.leak, inplace=True),
            )
            self.source = nn.Linear(cfg.bits, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        f = self.fc1(self.body(x).flatten(1))  # (B, 16384) -> (B, 1024)
        if self.cfg.binary:
            h = torch.tanh(self.hash(f))  # (B, l) in (-1, 1)
            logit = self.source(f).squeeze(1) if self.source is not None else None
        else:
            h = self.feature(f)  # (B, l) float feature
            logit = self.source(h).squeeze(1)
        return logit, h


class FeatureGenerator(nn.Module):
    """z (B, l) -> a fake standardised feature vector (B, D)."""

    def __init__(self, cfg: UAHMConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.bits, cfg.hidden, bias=False),
            nn.BatchNorm1d(cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden, cfg.feature_dim),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, D)


class FeatureDiscriminator(nn.Module):
    """``(logit, h)`` of feature vectors: source logit (B,) or None, tanh hash (B, l). No batch
    norm: a code must not depend on the other tiles of its batch."""

    def __init__(self, cfg: UAHMConfig):
        super().__init__()
        self.cfg = cfg
        self.trunk = nn.Sequential(nn.Linear(cfg.feature_dim, cfg.hidden), nn.LeakyReLU(cfg.leak))
        self.hash = nn.Linear(cfg.hidden, cfg.bits)
        self.source = nn.Linear(cfg.hidden, 1) if cfg.adversarial else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        f = self.trunk(x)  # (B, D) -> (B, hidden)
        logit = self.source(f).squeeze(1) if self.source is not None else None
        return logit, torch.tanh(self.hash(f))  # (B,), (B, l)


def init_weights(m: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BN scale N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build(cfg: UAHMConfig) -> tuple[nn.Module | None, nn.Module]:
    """The networks of a method, initialised; no generator for dhnn-ms. Feature networks keep
    PyTorch's default initialisation (DCGAN's N(0, 0.02) is meant for convolutions on pixels)."""
    if cfg.input == "features":
        return (FeatureGenerator(cfg) if cfg.adversarial else None), FeatureDiscriminator(cfg)
    g = Generator(cfg) if cfg.adversarial else None
    d = Discriminator(cfg)
    for net in (g, d):
        if net is not None:
            net.apply(init_weights)
    return g, d


def to_model_range(x01: torch.Tensor) -> torch.Tensor:
    """Normalised tiles [0, 1] -> the networks' [-1, 1]."""
    return x01 * 2 - 1


def to_tile_range(xm: torch.Tensor) -> torch.Tensor:
    """Generator output [-1, 1] -> normalised tiles [0, 1]."""
    return (xm + 1) / 2
