"""What every trainer shares, written once: config (de)serialising, optimiser state in flat
tensors, key prefixes, augmentation and the progress record of a step.

Every trainer follows one contract: a generator that yields :class:`rsgui.progress.Progress`
(``stage="train"``, ``values`` = the step's losses and, when evaluated, ``"map"``) and returns the
checkpoint path. Closing the generator (cancel) writes a resumable checkpoint and re-raises.
Checkpoint files themselves are :mod:`training.checkpoint`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

import torch

from rsgui.progress import Progress


class ConfigMixin:
    """``to_dict`` / ``from_dict`` for a dataclass config; unknown keys of an older or newer
    checkpoint are ignored, missing ones take their defaults."""

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in names})


def add_prefix(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``{k: v}`` -> ``{prefix.k: v}``: several networks in one flat safetensors file."""
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def strip_prefix(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix.``, without it: the inverse of :func:`add_prefix`."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """Optimiser state as flat tensors ``prefix.<param index>.<name>`` (safetensors has no
    nesting), so a resumed run does not restart Adam's moments and step counts."""
    out = {}
    for idx, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            out[f"{prefix}.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().clone()
    return out


def load_optimizer_tensors(
    opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], prefix: str
) -> bool:
    """Restore what :func:`optimizer_tensors` stored; False when the file holds no state."""
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    if not state:
        return False
    sd = opt.state_dict()
    sd["state"] = state
    opt.load_state_dict(sd)  # moves the moments to the parameters' device
    return True


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A random element of the dihedral group per tile (flips and a transpose): land cover has
    no up or left, so each view keeps the tile's class and its similarity row."""
    b = x.shape[0]
    m = torch.rand(3, b, generator=gen).to(x.device) < 0.5
    x = torch.where(m[0, :, None, None, None], x.flip(-1), x)
    x = torch.where(m[1, :, None, None, None], x.flip(-2), x)
    return torch.where(m[2, :, None, None, None], x.transpose(-1, -2), x)


class StepRate:
    """Images per second and the ETA, measured over windows of about half a second."""

    def __init__(self, step: int, total: int, batch: int, window_s: float = 0.5):
        self.total, self.batch, self.window_s = total, batch, window_s
        self._t, self._step = time.perf_counter(), step
        self.rate = 0.0

    def progress(self, step: int, values: Mapping[str, float], note: str = "") -> Progress:
        now = time.perf_counter()
        if now - self._t > self.window_s or step == self.total or not self.rate:
            if now > self._t and step > self._step:
                self.rate = (step - self._step) * self.batch / (now - self._t)
                self._t, self._step = now, step
        eta = (self.total - step) * self.batch / self.rate if self.rate > 0 else math.nan
        return Progress(step, self.total, note, "train", self.rate, eta, dict(values))
