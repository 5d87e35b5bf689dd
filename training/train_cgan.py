"""Training loop of the conditional GANs: arrays in, a checkpoint out.

A plain generator (the common trainer contract, :mod:`training.common`): it yields one
:class:`rsgui.progress.Progress` per step and returns the checkpoint path; checkpoints hold
weights, optimiser state and random state, so a resumed run continues where it stopped. Closing
the generator (cancel) writes that checkpoint first.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rsgui.errors import ModelFileError, TrainingDiverged
from rsgui.progress import Job
from training.cgan import (
    CGANConfig,
    Discriminator,
    Generator,
    d_loss,
    g_loss,
    init_weights,
    sample_noise,
)
from training.checkpoint import load_checkpoint, save_checkpoint
from training.common import (
    ConfigMixin,
    StepRate,
    add_prefix,
    augment,
    check_fits,
    check_inputs,
    check_losses,
    load_optimizer_tensors,
    optimizer_tensors,
    strip_prefix,
)


@dataclass
class TrainConfig(ConfigMixin):
    steps: int = 100_000
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    real_target: float = 0.9  # label smoothing of the discriminator's targets (the method's)
    fake_target: float = 0.1
    augment: bool = True  # random flips/transposes of real tiles (beyond the method; few tiles)
    # per-band stretch (beyond the method): reflectances fill only the bottom of [0, 1], so each
    # band is divided by its 99.5th percentile before the tanh range; generate() undoes it
    rescale: bool = True
    checkpoint_every: int = 1000
    history_every: int = 0  # 0: about 400 points over the run
    seed: int = 0


# Presets: the method's settings, and a small network that learns something in minutes on a CPU.
PRESETS: dict[str, dict] = {
    "thesis": {"model": {"width": 1.0}, "train": {"steps": 100_000, "batch_size": 64}},
    "quick": {
        "model": {"width": 0.25},
        "train": {"steps": 600, "batch_size": 32, "checkpoint_every": 200},
    },
    "cpu": {  # half the method's channels: thousands of steps on two cores
        "model": {"width": 0.5},
        "train": {"steps": 3000, "batch_size": 64, "checkpoint_every": 500},
    },
}


@dataclass
class GANData:
    """Labelled training tiles: ``pixels`` (N, C, H, W) float32 in [0, 1], bands in order."""

    pixels: np.ndarray
    labels: np.ndarray  # (N,) int64 class index
    classes: tuple[str, ...]
    band_names: tuple[str, ...]
    normalisation: dict
    source: str | None = None  # the archive the tiles came from; a resume must use the same


def band_scale(pixels: np.ndarray, q: float = 99.5, max_values: int = 1_000_000) -> list[float]:
    """Per-band ``q``-th percentile of the pixel values (at least 0.02), the GAN's stretch."""
    out = []
    rng = np.random.default_rng(0)
    for c in range(pixels.shape[1]):
        v = np.asarray(pixels[:, c], np.float32).ravel()
        if v.size > max_values:
            v = rng.choice(v, max_values, replace=False)
        out.append(float(max(np.percentile(v, q), 0.02)) if v.size else 1.0)
    return out


def build_models(cfg: CGANConfig) -> tuple[Generator, Discriminator]:
    g, d = Generator(cfg), Discriminator(cfg)
    g.apply(init_weights)
    d.apply(init_weights)
    return g, d


def load_generator(path, device="cpu", method: str | None = None) -> tuple[Generator, dict]:
    """The generator of a conditional GAN checkpoint (eval mode) and its sidecar."""
    tensors, meta = load_checkpoint(path, expected_method=method)
    try:
        cfg = CGANConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: not a conditional GAN checkpoint ({e})") from None
    check_fits(path, lambda: {"G": Generator(cfg)}, tensors)
    _check_generator_meta(path, meta, cfg)
    try:
        g = Generator(cfg)
        g.load_state_dict(strip_prefix(tensors, "G"))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path}: not a conditional GAN checkpoint ({e})") from None
    return g.to(device).eval(), meta


def _check_generator_meta(path, meta: dict, cfg: CGANConfig) -> None:
    """What generating reads from the sidecar: class and band names (they become file names and
    band descriptions) and the per-band stretch (a NaN there makes every tile NaN)."""
    for key, n in (("classes", cfg.n_classes), ("band_names", cfg.channels)):
        names = meta.get(key)
        if (
            not isinstance(names, list)
            or len(names) != n
            or not all(isinstance(v, str) for v in names)
        ):
            raise ModelFileError(f"{path}: {key} {names!r} do not fit a model of {n}")
    scale = meta.get("pixel_scale")
    if scale is not None and (
        not isinstance(scale, list)
        or len(scale) != cfg.channels
        or not all(type(v) in (int, float) and math.isfinite(v) and v > 0 for v in scale)
    ):
        raise ModelFileError(f"{path}: pixel scale {scale!r} is not usable")


def train_cgan(
    data: GANData,
    out: str | Path,
    model_cfg: CGANConfig | None = None,
    train_cfg: TrainConfig | None = None,
    device: str | torch.device = "cpu",
    resume: str | Path | None = None,
) -> Job[Path]:
    """Train, yielding one Progress per step (``values``: the losses); return the checkpoint path.

    With ``resume`` the models, optimiser states, random state, step and history come from that
    checkpoint; the model configuration is the checkpoint's, ``train_cfg.steps`` may extend the
    run. The checkpoint's ``method`` is the config's ``kind``.
    """
    device = torch.device(device)
    train_cfg = train_cfg or TrainConfig()
    history: list[dict] = []
    step = 0
    scale: list[float] | None = None
    tensors: dict[str, torch.Tensor] = {}
    if resume is not None:
        tensors, meta = load_checkpoint(resume, expected_method=(model_cfg or CGANConfig()).kind)
        try:
            model_cfg = CGANConfig.from_dict(meta["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{resume}: not a conditional GAN checkpoint ({e})") from None
        if tuple(meta["band_names"]) != tuple(data.band_names):
            raise ValueError(
                f"{resume}: trained on bands {meta['band_names']}, not {data.band_names}"
            )
        if tuple(meta["classes"]) != tuple(data.classes):
            raise ValueError(f"{resume}: trained on classes {meta['classes']}, not {data.classes}")
        step, history = int(meta["step"]), list(meta.get("history", []))
        scale = meta.get("pixel_scale")
        cfg_saved = model_cfg
        check_fits(resume, lambda: dict(zip("GD", build_models(cfg_saved), strict=True)), tensors)
    model_cfg = model_cfg or CGANConfig()
    model_cfg.n_classes = len(data.classes)
    model_cfg.channels = len(data.band_names)

    torch.manual_seed(train_cfg.seed)
    gen_rng = torch.Generator().manual_seed(train_cfg.seed + 1)
    G, D = build_models(model_cfg)
    G.to(device).train()
    D.to(device).train()
    betas = (train_cfg.beta1, train_cfg.beta2)
    opt_g = torch.optim.Adam(G.parameters(), lr=train_cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=train_cfg.lr, betas=betas)
    if tensors:
        try:
            G.load_state_dict(strip_prefix(tensors, "G"))
            D.load_state_dict(strip_prefix(tensors, "D"))
        except RuntimeError as e:
            raise ModelFileError(f"{resume}: weights do not fit the model ({e})") from None
        load_optimizer_tensors(opt_g, tensors, "optG")
        load_optimizer_tensors(opt_d, tensors, "optD")
        if "rng" in tensors:
            gen_rng.set_state(tensors["rng"])

    x_all = torch.from_numpy(np.ascontiguousarray(data.pixels, dtype=np.float32))
    check_inputs(x_all)
    if x_all.shape[-1] != model_cfg.image_size or x_all.shape[-2] != model_cfg.image_size:
        x_all = F.interpolate(x_all, size=(model_cfg.image_size,) * 2, mode="area")
    if resume is None:
        scale = band_scale(data.pixels) if train_cfg.rescale else [1.0] * len(data.band_names)
    scale_t = torch.tensor(scale or [1.0] * len(data.band_names), dtype=torch.float32)
    x_all = (x_all / scale_t[:, None, None]).clamp(0, 1) * 2 - 1  # the generator's tanh range
    y_all = torch.from_numpy(np.asarray(data.labels, dtype=np.int64))
    n, k = len(x_all), model_cfg.n_classes
    if n == 0:
        raise ValueError("no labelled tiles to train on")
    total = train_cfg.steps
    every = train_cfg.history_every or max(1, total // 400)

    saved_step = step if resume is not None else None

    def checkpoint() -> Path:
        nonlocal saved_step
        ts = add_prefix(G.state_dict(), "G") | add_prefix(D.state_dict(), "D")
        ts |= optimizer_tensors(opt_g, "optG") | optimizer_tensors(opt_d, "optD")
        ts["rng"] = gen_rng.get_state()
        meta = {
            "method": model_cfg.kind,
            "band_names": list(data.band_names),
            "bits": 0,
            "normalisation": data.normalisation,
            "classes": list(data.classes),
            "config": model_cfg.to_dict(),
            "train": train_cfg.to_dict(),
            "step": step,
            "total_steps": total,
            "n_train_tiles": n,
            "pixel_scale": scale_t.tolist(),
            "history": history,
        }
        if data.source:
            meta["archive_root"] = data.source
        path = save_checkpoint(out, ts, meta)
        saved_step = step
        return path

    acc: dict[str, float] = {}
    n_acc = 0
    rate = StepRate(step, total, train_cfg.batch_size)
    try:
        while step < total:
            idx = torch.randint(0, n, (train_cfg.batch_size,), generator=gen_rng)
            real, labels = x_all[idx], y_all[idx]
            if train_cfg.augment:
                real = augment(real, gen_rng)
            real, labels = real.to(device), labels.to(device)
            z = sample_noise(len(idx), model_cfg.z_dim, gen_rng, device)
            fake_labels = torch.randint(0, k, (len(idx),), generator=gen_rng).to(device)
            fake = G(z, fake_labels)  # (B, C, S, S)

            loss_d, logs_d = d_loss(
                D, real, fake, labels, fake_labels, train_cfg.real_target, train_cfg.fake_target
            )
            check_losses(step + 1, logs_d, out, saved_step)  # before the weights take it
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            loss_g, logs_g = g_loss(D, fake, fake_labels)
            check_losses(step + 1, logs_g, out, saved_step)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            step += 1

            losses = logs_d | logs_g
            for key, v in losses.items():
                acc[key] = acc.get(key, 0.0) + v
            n_acc += 1
            if step % every == 0 or step == total:
                history.append({"step": step, **{key: v / n_acc for key, v in acc.items()}})
                acc, n_acc = {}, 0
            every_ck = train_cfg.checkpoint_every
            if every_ck and step % every_ck == 0 and step < total:
                checkpoint()
            yield rate.progress(step, losses)
    except GeneratorExit:  # cancelled: a checkpoint of the steps done, resumable
        with contextlib.suppress(TrainingDiverged):  # never over a good one with NaN weights
            checkpoint()
        raise
    return checkpoint()
