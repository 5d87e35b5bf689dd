"""Synthesise labelled tiles with a trained conditional GAN: arrays out, in [0, 1].

Writing them as a labelled folder of GeoTIFFs is :mod:`rsgui.services.generation`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.cgan import Generator, sample_noise
from training.train_cgan import load_generator


@dataclass
class LoadedGenerator:
    """A generator with what is needed to label and save its output."""

    model: Generator
    meta: dict

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta["classes"])

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(self.meta["band_names"])

    @property
    def z_dim(self) -> int:
        return self.model.cfg.z_dim

    def class_index(self, name: str) -> int:
        if name not in self.classes:
            raise ValueError(f"unknown class {name!r}; the model knows: {', '.join(self.classes)}")
        return self.classes.index(name)


def load(ckpt: str | Path | LoadedGenerator, device: str = "cpu") -> LoadedGenerator:
    if isinstance(ckpt, LoadedGenerator):
        return ckpt
    g, meta = load_generator(ckpt, device=device)
    return LoadedGenerator(g, meta)


@torch.no_grad()
def _run(gen: LoadedGenerator, z: torch.Tensor, label: int, batch_size: int = 256) -> np.ndarray:
    dev = next(gen.model.parameters()).device
    c = gen.model.cfg.channels
    scale = torch.tensor(gen.meta.get("pixel_scale") or [1.0] * c, device=dev)[:, None, None]
    outs = []
    for i in range(0, len(z), batch_size):
        zb = z[i : i + batch_size].to(dev)
        y = torch.full((len(zb),), label, dtype=torch.long, device=dev)
        x = ((gen.model(zb, y) + 1) / 2).clamp(0, 1) * scale  # undo the training stretch
        outs.append(x.clamp(0, 1).float().cpu().numpy())
    if not outs:
        s = gen.model.cfg.image_size
        return np.zeros((0, c, s, s), np.float32)
    return np.concatenate(outs)


def generate(
    ckpt: str | Path | LoadedGenerator, class_name: str, n: int, seed: int = 0, device: str = "cpu"
) -> np.ndarray:
    """``n`` tiles of a class: (N, C, H, W) float32 in [0, 1], bands in the model's order.
    The same seed gives the same tiles."""
    gen = load(ckpt, device)
    label = gen.class_index(class_name)
    z = sample_noise(n, gen.z_dim, torch.Generator().manual_seed(seed))
    return _run(gen, z, label)


def interpolate(
    ckpt_or_model: str | Path | LoadedGenerator,
    class_name: str,
    z0: np.ndarray,
    z1: np.ndarray,
    t: float | np.ndarray,
) -> np.ndarray:
    """Tiles along the straight line from noise ``z0`` to ``z1`` (each (z_dim,)) at ``t`` in
    [0, 1]: (len(t), C, H, W), or (C, H, W) for a scalar ``t``."""
    gen = load(ckpt_or_model)
    ts = np.atleast_1d(np.asarray(t, dtype=np.float32))
    a = torch.as_tensor(np.asarray(z0, np.float32)).reshape(1, -1)
    b = torch.as_tensor(np.asarray(z1, np.float32)).reshape(1, -1)
    w = torch.from_numpy(ts).reshape(-1, 1)
    out = _run(gen, (1 - w) * a + w * b, gen.class_index(class_name))
    return out[0] if np.ndim(t) == 0 else out


def random_noise(ckpt_or_model, seed: int = 0) -> np.ndarray:
    """One noise vector of the model's size, z ~ U[-1, 1]."""
    gen = load(ckpt_or_model)
    return sample_noise(1, gen.z_dim, torch.Generator().manual_seed(seed))[0].numpy()
