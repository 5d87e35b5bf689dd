"""Device choice shared by the training loops and the services that start them.

Each trainer seeds its own random sources from its settings, so a seeded run repeats exactly on
the same device (CPU; on CUDA up to non-deterministic kernels).
"""

from __future__ import annotations

import torch


def pick_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> the first CUDA device when present, else CPU; ``cpu``, ``cuda``, ``cuda:N``
    as asked, with a clear error when the asked CUDA device does not exist."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but no CUDA device is available")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
