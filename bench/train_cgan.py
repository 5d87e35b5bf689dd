"""Training speed of the conditional GANs (images per second), apart from training itself.

    python bench/train_cgan.py [--steps 5] [--width 1.0] [--batch 64] [--devices cpu,cuda]

Times full training steps (discriminator + generator update) of cDCGAN and ACGAN on rgb and ms10
tiles of random data, and prints a table and a ratio line against a reference configuration
measured in the same run (cDCGAN, rgb, CPU), so numbers from different machines compare.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from training.cgan import CGANConfig
from training.train_cgan import GANData, TrainConfig, train_cgan

REFERENCE = ("cdcgan", "rgb", "cpu")
BANDS = {"rgb": 3, "ms10": 10}


def measure(
    method: str, bands: str, device: str, width: float, batch: int, steps: int, warmup: int = 2
) -> float:
    c = BANDS[bands]
    rng = np.random.default_rng(0)
    data = GANData(
        rng.random((max(batch, 64), c, 64, 64), dtype=np.float32),
        np.arange(max(batch, 64)) % 10,
        tuple(f"class{i}" for i in range(10)),
        tuple(f"B{i:02d}" for i in range(c)),
        {"clip": 4095.0, "divisor": 4095.0},
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tc = TrainConfig(steps=warmup + steps, batch_size=batch, checkpoint_every=0)
        it = train_cgan(
            data, f"{tmp}/g.safetensors", CGANConfig(kind=method, width=width), tc, device
        )
        for _ in range(warmup):
            next(it)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            next(it)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        it.close()
    return steps * batch / dt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--width", type=float, default=1.0, help="1.0 = the method's networks")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, width x{a.width}, "
        f"batch {a.batch}, {a.steps} timed steps"
    )
    rows = []
    for device in a.devices.split(","):
        if device.startswith("cuda") and not torch.cuda.is_available():
            continue
        for method in ("cdcgan", "acgan"):
            for bands in ("rgb", "ms10"):
                ips = measure(method, bands, device, a.width, a.batch, a.steps)
                rows.append((method, bands, device, ips))
    print(f"{'model':8} {'bands':5} {'device':6} {'images/s':>10} {'s/step':>8}")
    for method, bands, device, ips in rows:
        print(f"{method:8} {bands:5} {device:6} {ips:10.1f} {a.batch / ips:8.3f}")
    ref = next((r[3] for r in rows if r[:3] == REFERENCE), None)
    if ref:
        ratios = ", ".join(f"{m}/{b}/{d} {ips / ref:.2f}x" for m, b, d, ips in rows)
        print(f"ratio to reference {'/'.join(REFERENCE)} ({ref:.1f} images/s): {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
