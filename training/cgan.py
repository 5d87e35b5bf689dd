"""Class-conditioned GANs for labelled tile synthesis: conditional DCGAN and ACGAN.

Both share one generator: uniform noise in [-1, 1]^z_dim concatenated with a one-hot class goes
through a linear layer to a 4x4x512 map and is doubled by 5x5 stride-2 transposed convolutions
(BN + ReLU) to the tile size, tanh output. The discriminators follow the method's figure: 5x5
convolutions with strides 2,1,2,1,2 to 16..256 channels (LeakyReLU 0.2), a 1024-unit dense layer,
then one real/fake logit (cDCGAN, which also sees the class as extra constant input channels) or
a real/fake logit plus class logits (ACGAN, which sees the image only). Logits, not sigmoids: the
losses use the numerically safe ``*_with_logits`` forms, which are the same functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.common import ConfigMixin


@dataclass
class CGANConfig(ConfigMixin):
    kind: str = "cdcgan"  # cdcgan (class as input channels) | acgan (auxiliary classifier)
    n_classes: int = 10
    channels: int = 3  # 3 (rgb) or 10 (ms10)
    image_size: int = 64  # power of two >= 8; 64 in the method
    z_dim: int = 100
    width: float = 1.0  # channel multiplier; 1.0 is the method, smaller for quick runs and tests
    leak: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in ("cdcgan", "acgan"):
            raise ValueError(f"unknown conditional GAN kind {self.kind!r}; cdcgan or acgan")
        n = math.log2(self.image_size)
        if n != int(n) or self.image_size < 8:
            raise ValueError(f"image size must be a power of two >= 8, not {self.image_size}")

    @property
    def n_up(self) -> int:
        return int(math.log2(self.image_size)) - 2  # 4 -> image_size

    @property
    def auxiliary_classifier(self) -> bool:
        """ACGAN: the discriminator also classifies; cDCGAN: it sees the class as input."""
        return self.kind == "acgan"

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        if "kind" not in d and "method" in d:  # checkpoints written before the field's rename
            d["kind"] = d["method"]
        return super().from_dict(d)


def _ch(base: int, width: float) -> int:
    return max(4, int(round(base * width)))


def sample_noise(n: int, z_dim: int, generator: torch.Generator | None = None, device=None):
    """z ~ U[-1, 1]^z_dim, as in the method."""
    z = torch.rand(n, z_dim, generator=generator) * 2 - 1
    return z if device is None else z.to(device)


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    return F.one_hot(labels.long(), n_classes).float()


class Generator(nn.Module):
    def __init__(self, cfg: CGANConfig):
        super().__init__()
        self.cfg = cfg
        # channels per resolution, 4x4 first: 512, 256, 128, 64 for a 64x64 tile
        chans = [_ch(64 * 2 ** (cfg.n_up - 1 - i), cfg.width) for i in range(cfg.n_up)]
        self.c0 = chans[0]
        self.fc = nn.Linear(cfg.z_dim + cfg.n_classes, 4 * 4 * self.c0)
        self.bn0 = nn.BatchNorm2d(self.c0)
        ups: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            ups += [_up(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        ups += [_up(chans[-1], cfg.channels), nn.Tanh()]
        self.ups = nn.Sequential(*ups)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, one_hot(labels, self.cfg.n_classes).to(z)], dim=1)  # (B, z+K)
        h = self.fc(h).view(-1, self.c0, 4, 4)  # (B, 512, 4, 4)
        h = F.relu(self.bn0(h))
        return self.ups(h)  # (B, C, S, S) in [-1, 1]


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    # 5x5, stride 2: exactly doubles the side with padding 2 and output_padding 1
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


class Discriminator(nn.Module):
    def __init__(self, cfg: CGANConfig):
        super().__init__()
        self.cfg = cfg
        extra = 0 if cfg.auxiliary_classifier else cfg.n_classes  # one-hot as constant channels
        layers: list[nn.Module] = []
        cin, side = cfg.channels + extra, cfg.image_size
        for base, stride in zip((16, 32, 64, 128, 256), (2, 1, 2, 1, 2), strict=True):
            cout = _ch(base, cfg.width)
            layers += [nn.Conv2d(cin, cout, 5, stride=stride, padding=2), nn.LeakyReLU(cfg.leak)]
            cin, side = cout, side // stride
        self.convs = nn.Sequential(*layers)  # (B, 256, S/8, S/8)
        self.fc = nn.Sequential(nn.Linear(cin * side * side, 1024), nn.LeakyReLU(cfg.leak))
        self.out = nn.Linear(1024, 1 + (cfg.n_classes if cfg.auxiliary_classifier else 0))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        """Returns (real/fake logit (B,), class logits (B, K) or None)."""
        if not self.cfg.auxiliary_classifier:
            if labels is None:
                raise ValueError("the conditional DCGAN discriminator needs the labels")
            y = one_hot(labels, self.cfg.n_classes).to(x)[:, :, None, None]
            x = torch.cat([x, y.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)  # (B, C+K, S, S)
        h = self.fc(self.convs(x).flatten(1))  # (B, 1024)
        o = self.out(h)  # (B, 1 [+K])
        return o[:, 0], (o[:, 1:] if self.cfg.auxiliary_classifier else None)


def init_weights(m: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BN gamma N(1, 0.02)."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def d_loss(
    disc: Discriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    labels: torch.Tensor,
    fake_labels: torch.Tensor,
    real_target: float = 0.9,
    fake_target: float = 0.1,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Discriminator loss (minimised; the method's maximised objective negated), with the method's
    label smoothing of the real/fake targets. ACGAN adds the class cross-entropy on both."""
    lr, cr = disc(real, labels)
    lf, cf = disc(fake.detach(), fake_labels)
    adv = F.binary_cross_entropy_with_logits(
        lr, torch.full_like(lr, real_target)
    ) + F.binary_cross_entropy_with_logits(lf, torch.full_like(lf, fake_target))
    logs = {"d_adv": adv.item(), "d_real": torch.sigmoid(lr).mean().item()}
    loss = adv
    if cr is not None:
        cls = F.cross_entropy(cr, labels) + F.cross_entropy(cf, fake_labels)
        loss = loss + cls
        logs["d_class"] = cls.item()
        logs["d_acc"] = (cr.argmax(1) == labels).float().mean().item()
    return loss, logs


def g_loss(
    disc: Discriminator, fake: torch.Tensor, fake_labels: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """Generator loss: the non-saturating log D(G(z|y)) form (+ class term for ACGAN)."""
    lf, cf = disc(fake, fake_labels)
    adv = F.binary_cross_entropy_with_logits(lf, torch.ones_like(lf))
    logs = {"g_adv": adv.item()}
    loss = adv
    if cf is not None:
        cls = F.cross_entropy(cf, fake_labels)
        loss = loss + cls
        logs["g_class"] = cls.item()
    return loss, logs
