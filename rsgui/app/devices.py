"""Compute devices a training run can use: the CPU, and every CUDA device when torch sees one.

torch is imported only when the list is asked for, so opening the application stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Device:
    """``id`` is what torch takes (``cpu``, ``cuda:0``); ``label`` is what the user reads."""

    id: str
    label: str


def list_devices() -> list[Device]:
    """CUDA devices first (a GPU is the better default when present), the CPU always last."""
    devices: list[Device] = []
    try:
        import torch

        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                gib = props.total_memory / 2**30
                devices.append(Device(f"cuda:{i}", f"cuda:{i} — {props.name} ({gib:.0f} GiB)"))
    except Exception:  # a broken CUDA driver must not hide the CPU
        devices = []
    devices.append(Device("cpu", f"CPU ({_cpu_count()} cores)"))
    return devices


def _cpu_count() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
