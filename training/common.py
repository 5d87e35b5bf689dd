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
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from typing import Any

import numpy as np
import torch

from rsgui.errors import JobError, ModelFileError, TrainingDiverged
from rsgui.progress import Progress


class ConfigMixin:
    """``to_dict`` / ``from_dict`` for a dataclass config; unknown keys of an older or newer
    checkpoint are ignored, missing ones take their defaults."""

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """Raises ValueError (naming the field) for a value of the wrong type, a float that is
        not finite, or an integer given as a non-integral number: settings read from a file are
        checked before any network is built from them."""
        if not isinstance(d, Mapping):
            raise ValueError(f"settings must be a JSON object, not {type(d).__name__}")
        kinds = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: _checked(k, kinds[k], v) for k, v in d.items() if k in kinds})


def _checked(name: str, kind: Any, v: Any) -> Any:
    """``v`` as a field of annotation ``kind`` ("int", "float", "bool", "str"; others as is)."""
    if kind == "bool":
        if not isinstance(v, bool):
            raise ValueError(f"setting {name} = {v!r} is not true or false")
    elif kind == "int":
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"setting {name} = {v!r} is not an integer")
    elif kind == "float":
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"setting {name} = {v!r} is not a finite number")
        v = float(v)
    elif kind == "str" and not isinstance(v, str):
        raise ValueError(f"setting {name} = {v!r} is not a text")
    return v


def check_losses(step: int, losses: Mapping[str, float], out=None, last_saved=None) -> None:
    """Stop a run whose step gave a NaN or infinite loss, before the optimiser applies it:
    :class:`rsgui.errors.TrainingDiverged` naming the step, the loss and what is on disk."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if not bad:
        return
    parts = ", ".join(f"{k} {v}" for k, v in bad.items())
    kept = ""
    if out is not None:
        kept = (
            f"; {out} keeps its checkpoint of step {last_saved}"
            if last_saved is not None
            else f"; nothing was saved to {out}"
        )
    raise TrainingDiverged(
        f"training diverged at step {step} ({parts}): stopped without saving non-finite "
        f"weights{kept}; try a lower learning rate"
    )


def check_inputs(x: torch.Tensor | np.ndarray, what: str = "training tiles") -> None:
    """Refuse training inputs holding NaN or infinity (they make every loss NaN)."""
    t = torch.as_tensor(x)
    if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
        raise JobError(f"the {what} hold NaN or infinite values; they cannot be trained on")


def check_fits(
    path, nets: Callable[[], Mapping[str, torch.nn.Module | None]], tensors: Mapping
) -> None:
    """Build the networks of a checkpoint's settings on torch's meta device (no memory is
    allocated) and compare every parameter and buffer shape with the file's tensors: settings
    claiming a network far bigger than the file (a width of 1000, a hidden layer of 1e7) are
    refused, naming the file, before the real network is built."""
    try:
        with torch.device("meta"):
            built = nets()
        shapes = {
            prefix: {k: tuple(v.shape) for k, v in net.state_dict().items()}
            for prefix, net in built.items()
            if net is not None
        }
    except (TypeError, ValueError, RuntimeError, OverflowError, MemoryError) as e:
        raise ModelFileError(f"{path}: its settings cannot build a network ({e})") from None
    for prefix, want in shapes.items():
        have = strip_prefix(tensors, prefix)
        for key, shape in want.items():
            if key not in have:
                raise ModelFileError(
                    f"{path}: weights lack {prefix}.{key}, which its settings need"
                )
            got = tuple(have[key].shape)
            if got != shape:
                raise ModelFileError(
                    f"{path}: its settings make {prefix}.{key} of shape {shape} but the file "
                    f"holds {got}; settings and weights do not belong together"
                )


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
