"""Training loop for the UAHM family (uahm, dhnn-ms, gan-rgb, gan-ms): a plain generator.

    path = yield from train(model_cfg, settings, tiles, ssm, out="m.safetensors", meta=...)

It yields :class:`rsgui.progress.Progress` per step (``values``: the losses, and ``"map"`` after an
evaluation) and returns the checkpoint path. Each step: a batch of real tiles (optionally
flipped / rotated), the discriminator step on real and generated tiles (plus the hash terms on the
real ones), then the generator step. Without the adversarial part (dhnn-ms) there is no generator.

Repeatability: every random draw of step ``t`` (batch, noise, augmentation) comes from a
generator seeded with ``(seed, t)``, so a run resumed from a checkpoint at step k continues
exactly as the uninterrupted run would (bit for bit on CPU). Checkpoints hold the weights of both
networks and the Adam state as safetensors tensors. Closing the generator (cancel) writes a
checkpoint of the steps done and re-raises.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rsgui.errors import ModelFileError, TrainingDiverged
from rsgui.progress import Progress
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
from training.losses import discriminator_loss, generator_loss
from training.ssm import SSMConfig
from training.uahm import UAHMConfig, build, sample_noise, to_model_range, to_tile_range

Evaluate = Callable[[np.ndarray], Mapping[str, float]]


@dataclass
class TrainSettings(ConfigMixin):
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    w_binary: float = 0.1  # w1 of eq. 5.8
    w_semantic: float = 0.1  # w2 of eq. 5.8
    dissimilar_target: float = -1.0  # target code product of dissimilar pairs (-1 = method)
    pair_sampling: bool = False  # half of each batch: a similar partner of the other half
    semantic_loss: str = "mse"  # mse (eq. 5.6) | likelihood (training.losses.likelihood_loss)
    positive_weight: float = 1.0  # weight of similar pairs in the likelihood loss
    seed: int = 0
    augment: bool = False  # random flips and 90-degree rotations of real tiles
    amp: bool = False  # bfloat16 autocast on CUDA
    checkpoint_every: int = 500  # steps between checkpoints (0: only at the end)
    eval_every: int = 0  # steps between held-out MAP evaluations (0: never)
    eval_k: int = 20  # MAP@k of those evaluations
    log_every: int = 10  # steps between history entries


def preset_config(
    method: str,
    preset: str,
    n_tiles: int,
    bits: int = 64,
    channels: int = 10,
    image_size: int = 64,
    variant: str = "thesis",
    adversarial: bool = True,
    binary: bool = True,
    feature_dim: int = 0,
):
    """(model config, train settings, SSM config) of a preset and variant.

    ``thesis``: the method's networks and hyperparameters (batch 64, Adam 1e-4 / 0.5 / 0.999,
    w1 = w2 = 0.1, K1 / K2 = 500 / 300 per 5,000 tiles, fused local histogram + Inception with
    eta = 6). ``quick``: narrower networks (a quarter of the channels) and few steps, sized to
    finish within minutes on two CPU cores; same losses. ``cpu``: between the two, sized for the
    chapter 5 protocol (5,000 training tiles) on two CPU cores.

    ``variant='improved'`` with ``feature_dim`` (the training-free extractor installed): the hash
    network works on the frozen ``pretrained`` vectors of the tiles, the similarity matrix is
    their symmetric kNN graph, and the semantic term is the pairwise likelihood with similar
    pairs weighed up (see :data:`FEATURE_PRESETS` for the measurements). Without the extractor
    the improved variant trains on pixels with the changes below.

    ``variant='improved'`` changes what was shown to help on real tiles (numbers below):
    half of each batch are similar partners of the other half, dissimilar pairs aim at
    orthogonal codes (target 0, not -1), and the hash terms weigh more against the adversarial
    one. Flips / rotations (``augment``) stay available but off. Batch norm running statistics
    ignore generated tiles in both variants (an evaluation fix, see :func:`frozen_bn_stats`).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose {', '.join(PRESETS)}")
    if variant == "improved" and feature_dim and method == "uahm":
        return _feature_preset(method, preset, bits, channels, image_size, feature_dim)
    model = UAHMConfig(
        method=method, bits=bits, channels=channels, image_size=image_size, variant=variant,
        width={"thesis": 1.0, "cpu": CPU_WIDTH}.get(preset, QUICK_WIDTH), adversarial=adversarial,
        binary=binary,
    )  # fmt: skip
    settings = TrainSettings()
    if preset == "thesis":
        # the method gives no step count: 100 passes over the training set, at least 2,000 steps
        settings.steps = max(2000, 100 * math.ceil(n_tiles / settings.batch_size))
    else:
        settings.steps = CPU_STEPS if preset == "cpu" else QUICK_STEPS
        settings.batch_size = QUICK_BATCH
        settings.lr = QUICK_LR
        settings.checkpoint_every = 0 if preset == "quick" else settings.checkpoint_every
    ssm = SSMConfig(inception_size=139)  # 96 px loses a quarter of the IoU (see ssm.py)
    if variant == "improved":
        settings.augment = IMPROVED_AUGMENT
        settings.w_semantic = IMPROVED_W_SEMANTIC
        settings.w_binary = IMPROVED_W_BINARY
        settings.dissimilar_target = IMPROVED_DISSIMILAR
        settings.pair_sampling = True
    return model, settings, ssm


def _feature_preset(method, preset, bits, channels, image_size, feature_dim):
    p = FEATURE_PRESETS[preset]
    model = UAHMConfig(
        method=method,
        bits=bits,
        channels=channels,
        image_size=image_size,
        variant="improved",
        input="features",
        feature_dim=feature_dim,
        hidden=p["hidden"],
        adversarial=False,
    )
    settings = TrainSettings(
        steps=p["steps"],
        batch_size=p["batch"],
        lr=p["lr"],
        w_semantic=p["w_semantic"],
        w_binary=p["w_binary"],
        semantic_loss="likelihood",
        positive_weight=p["positive_weight"],
        pair_sampling=True,
        checkpoint_every=p["checkpoint_every"],
    )
    return model, settings, SSMConfig(features="pretrained", mode="knn")


PRESETS = ("quick", "cpu", "thesis")
# The improved variant on frozen features, measured on the chapter 5 protocol of the 26,000
# EuroSAT RGB tiles (1,000 queries held out, 5,000 training tiles, kNN K = 20, 64 bits, MAP@100 /
# P@20 of the queries; PCA + ITQ on the same vectors: 0.733 / 0.710): 1,000 steps 0.796 / 0.793
# (16 s), 3,000 steps 0.823 / 0.822 (45 s). The adversarial part (a generator of feature vectors
# and a source head on the shared layer) lowered it to 0.637 / 0.620 at weight 1 and 0.698 / 0.690
# at weight 0.01 (1,000-2,000 steps), so these models train without it.
_FEATURE_COMMON = dict(
    hidden=1024, batch=256, lr=3e-4, w_semantic=10.0, w_binary=1.0, positive_weight=10.0
)
FEATURE_PRESETS = {
    "quick": dict(_FEATURE_COMMON, steps=1000, checkpoint_every=0),
    "cpu": dict(_FEATURE_COMMON, steps=3000, checkpoint_every=1000),
    "thesis": dict(_FEATURE_COMMON, steps=6000, checkpoint_every=1000),
}
# cpu preset on pixels: the quick networks trained five times longer, sized so the chapter 5
# protocol's nine pixel models (5,000 training tiles, 26,000 tiles encoded each) fit in an hour
CPU_WIDTH = 0.25
CPU_STEPS = 500
# quick preset: sized for ~300 tiles in a few minutes on 2 CPU cores (see the report)
QUICK_WIDTH = 0.25
QUICK_STEPS = 300
QUICK_BATCH = 32
QUICK_LR = 2e-4
# improved variant, measured on the 311-tile subset (MAP@20, every tile querying the rest,
# 64 bits, width 0.25, batch 32, lr 2e-4, 125 steps): method settings 0.39; + partner sampling
# and dissimilar target 0 with w2 = 5: 0.61; w2 = 20: 0.66 (dhnn-ms: 0.50 -> 0.70). Flips and
# rotations did not help on these tiles (0.42 -> 0.37 at 100 steps), so they stay off.
IMPROVED_W_SEMANTIC = 20.0
IMPROVED_W_BINARY = 2.0  # raised x20 with w2 (x200): L_adv ~ 1 vs L_s ~ 0.05 with target 0
IMPROVED_AUGMENT = False
IMPROVED_DISSIMILAR = 0.0


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random source of one step: the same for a resumed and an uninterrupted run."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))


def with_partners(anchors: torch.Tensor, ssm, gen: torch.Generator) -> torch.Tensor:
    """Anchors followed by one random similar tile of each (itself when it has none).

    With K of a few hundred among thousands, a random batch of 64 holds only a few similar
    pairs, so the semantic loss mostly hears "dissimilar"; partners give every batch positives.
    """
    rows = ssm.rows(anchors.numpy())
    rows[np.arange(len(anchors)), anchors.numpy()] = False
    partners = []
    for a, row in zip(anchors.tolist(), rows, strict=True):
        cand = np.flatnonzero(row)
        pick = int(torch.randint(len(cand), (1,), generator=gen)) if len(cand) else -1
        partners.append(int(cand[pick]) if len(cand) else a)
    return torch.cat([anchors, torch.tensor(partners, dtype=anchors.dtype)])


@contextlib.contextmanager
def frozen_bn_stats(module: torch.nn.Module):
    """Batch norm still normalises by the batch, but its running statistics ignore this pass.

    The discriminator sees generated tiles in two of its three passes per step; letting them
    into the running statistics would make the encoder (eval mode) normalise real tiles with
    statistics of generated ones."""
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom


def check_model_inputs(x: torch.Tensor, cfg: UAHMConfig) -> None:
    """Tiles (N, C, S, S) for a model on pixels, vectors (N, D) for one on features."""
    if cfg.input == "features":
        if x.ndim != 2 or x.shape[1] != cfg.feature_dim:
            raise ValueError(f"features must be (N, {cfg.feature_dim}), got {tuple(x.shape)}")
        return
    if x.ndim != 4 or x.shape[1] != cfg.channels:
        raise ValueError(f"tiles must be (N, {cfg.channels}, H, W), got {tuple(x.shape)}")
    if tuple(x.shape[-2:]) != (cfg.image_size, cfg.image_size):
        raise ValueError(
            f"tiles are {x.shape[-2]}x{x.shape[-1]}, the model expects "
            f"{cfg.image_size}x{cfg.image_size}"
        )


@torch.no_grad()
def encode(d, tiles, device, batch_size: int = 256) -> np.ndarray:
    """(N, l) float32 codes (tanh outputs) or features of tiles in [0, 1] (or of feature vectors,
    for a model on features), eval mode."""
    was = d.training
    d.eval()
    out = []
    on_tiles = d.cfg.input == "tiles"
    for s in range(0, len(tiles), batch_size):
        x = torch.as_tensor(tiles[s : s + batch_size]).to(device, torch.float32)
        out.append(d(to_model_range(x) if on_tiles else x)[1].float().cpu())
    d.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, d.cfg.bits), np.float32)


def train(
    model_cfg: UAHMConfig,
    settings: TrainSettings,
    tiles: np.ndarray | torch.Tensor,
    ssm=None,
    out: str | Path | None = None,
    meta: dict | None = None,
    device: str | torch.device = "cpu",
    eval_tiles: np.ndarray | None = None,
    evaluate: Evaluate | None = None,
    resume: str | Path | None = None,
) -> Generator[Progress, None, Path | None]:
    """Train, yielding one :class:`Progress` per step; return the checkpoint path (None without
    ``out``).

    ``tiles`` (N, C, H, W) in [0, 1] (float16 is fine and halves memory); ``ssm`` (an
    :class:`training.ssm.SSM` over the same N tiles) is needed by the binary methods. ``meta``
    goes into every checkpoint sidecar (band names, normalisation...). Every
    ``settings.eval_every`` steps the codes of ``eval_tiles`` go to ``evaluate`` (e.g. held-out
    MAP, computed by the caller); what it returns joins the progress values and the metrics.
    """
    device = torch.device(device)
    tiles = torch.as_tensor(tiles)
    check_inputs(tiles)
    n = len(tiles)
    check_model_inputs(tiles, model_cfg)
    semantic = model_cfg.binary
    if semantic and (ssm is None or len(ssm) != n):
        raise ValueError(
            f"{model_cfg.method} needs a similarity matrix over the {n} training tiles"
        )
    if n < 2:
        raise ValueError("need at least 2 training tiles")
    batch = min(settings.batch_size, n)

    with torch.random.fork_rng(devices=[]):  # initial weights from the seed, global RNG untouched
        torch.manual_seed(settings.seed)
        g, d = build(model_cfg)
    d.to(device).train()
    if g is not None:
        g.to(device).train()
    betas = (settings.beta1, settings.beta2)
    opt_d = torch.optim.Adam(d.parameters(), lr=settings.lr, betas=betas)
    opt_g = torch.optim.Adam(g.parameters(), lr=settings.lr, betas=betas) if g else None
    start, history, metrics = 0, [], {}
    if resume is not None:
        start, history, metrics = _restore(resume, model_cfg, g, d, opt_g, opt_d)
    if start > settings.steps:
        raise ValueError(f"{resume}: already trained {start} steps, more than {settings.steps}")

    use_amp = settings.amp and device.type == "cuda"
    meta = dict(meta or {})

    saved_step = start if resume is not None else None

    def checkpoint(step: int) -> Path | None:
        nonlocal saved_step
        if out is None:
            return None
        tensors = {**add_prefix(d.state_dict(), "D"), **optimizer_tensors(opt_d, "optD")}
        if g is not None:
            tensors |= add_prefix(g.state_dict(), "G") | optimizer_tensors(opt_g, "optG")
        full = {
            **meta,
            "method": model_cfg.method,
            "bits": model_cfg.bits,
            "tile_size": model_cfg.image_size,
            "model": model_cfg.to_dict(),
            "training": settings.to_dict(),
            "step": step,
            "total_steps": settings.steps,
            "metrics": metrics,
            "history": history,
            "optimizer_state": "stored",
        }
        path = save_checkpoint(out, tensors, full)
        saved_step = step
        return path

    rate = StepRate(start, settings.steps, batch)
    done = start
    try:
        for step in range(start, settings.steps):
            rng = step_generator(settings.seed, step)
            idx = torch.randperm(n, generator=rng)[:batch]
            if settings.pair_sampling and semantic:
                idx = with_partners(idx[: (batch + 1) // 2], ssm, rng)[:batch]
            x = tiles[idx].to(device, torch.float32)
            if model_cfg.input == "tiles":
                x = to_model_range(augment(x, rng) if settings.augment else x)
            s = torch.from_numpy(ssm.block(idx.numpy())).to(device) if semantic else None
            z = sample_noise(batch, model_cfg.bits, rng, device) if g is not None else None
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                losses = _step(
                    d, g, opt_d, opt_g, x, z, s, settings, model_cfg,
                    check=lambda parts, t=step + 1: check_losses(t, parts, out, saved_step),
                )  # fmt: skip
            done = step + 1
            if settings.log_every and (done % settings.log_every == 0 or done == settings.steps):
                history.append({"step": done, **{k: round(v, 5) for k, v in losses.items()}})
            values = dict(losses)
            if (
                evaluate is not None
                and eval_tiles is not None
                and settings.eval_every
                and (done % settings.eval_every == 0 or done == settings.steps)
            ):
                found = {k: float(v) for k, v in evaluate(encode(d, eval_tiles, device)).items()}
                values |= found
                if "map" in found:
                    metrics[f"map@{settings.eval_k}"] = found["map"]
                    metrics.setdefault("map_history", []).append([done, round(found["map"], 5)])
            if (
                out is not None
                and settings.checkpoint_every
                and done % settings.checkpoint_every == 0
                and done < settings.steps
            ):
                checkpoint(done)
            yield rate.progress(done, values)
    except GeneratorExit:  # cancelled: keep what was learnt, resumable
        with contextlib.suppress(TrainingDiverged):  # never over a good one with NaN weights
            checkpoint(done)
        raise
    if out is None:
        return None
    if start == settings.steps:  # nothing left to do
        return Path(out).with_suffix(".safetensors")
    return checkpoint(done)


def _step(
    d, g, opt_d, opt_g, x, z, s, settings: TrainSettings, cfg: UAHMConfig, check=None
) -> dict:
    """One discriminator update then one generator update; returns the loss parts.
    ``check(parts)`` sees each loss before its optimiser step (and may stop the run)."""
    check = check or (lambda parts: None)
    if g is None:  # dhnn-ms: hash terms only
        _, h = d(x)
        loss, parts = discriminator_loss(
            None,
            None,
            h,
            s,
            settings.w_binary,
            settings.w_semantic,
            settings.dissimilar_target,
            settings.semantic_loss,
            settings.positive_weight,
        )
        check(parts)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        return parts
    fake = g(z)
    real_logit, h = d(x)
    with frozen_bn_stats(d):
        fake_logit, _ = d(fake.detach())
    loss_d, parts = discriminator_loss(
        real_logit.float(),
        fake_logit.float(),
        h.float() if cfg.binary else None,
        s if cfg.binary else None,
        settings.w_binary,
        settings.w_semantic,
        settings.dissimilar_target,
        settings.semantic_loss,
        settings.positive_weight,
    )
    check(parts)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    with frozen_bn_stats(d):
        logit, _ = d(fake)
    loss_g = generator_loss(logit.float())
    check({"g": float(loss_g.detach())})
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    parts["g"] = float(loss_g.detach())
    return parts


def _restore(path, cfg: UAHMConfig, g, d, opt_g, opt_d) -> tuple[int, list, dict]:
    """Load weights and optimiser state of a checkpoint into the fresh networks."""
    tensors, meta = load_checkpoint(path, expected_method=cfg.method)
    try:
        saved = UAHMConfig.from_dict(meta.get("model", {}))
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: model settings missing or invalid ({e})") from None
    if saved != cfg:
        raise ModelFileError(f"{path}: made with model settings {saved}, not {cfg}")
    check_fits(path, lambda: dict(zip(("G", "D"), (g, d), strict=True)), tensors)
    try:
        d.load_state_dict(strip_prefix(tensors, "D"))
        if g is not None:
            g.load_state_dict(strip_prefix(tensors, "G"))
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit the model ({e})") from None
    load_optimizer_tensors(opt_d, tensors, "optD")
    if opt_g is not None:
        load_optimizer_tensors(opt_g, tensors, "optG")
    return int(meta.get("step", 0)), list(meta.get("history", [])), dict(meta.get("metrics", {}))


def load_networks(
    path: str | Path, method: str | None = None, device="cpu", defaults: Mapping | None = None
):
    """(config, generator | None, discriminator, meta) of a checkpoint, in eval mode.

    ``defaults``: config fields a checkpoint may lack (written before they existed)."""
    tensors, meta = load_checkpoint(path, expected_method=method)
    try:
        cfg = UAHMConfig.from_dict({**(defaults or {}), **meta["model"]})
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: model settings missing or invalid ({e})") from None
    has_g = any(k.startswith("G.") for k in tensors)

    def nets():
        g, d = build(cfg)
        return {"D": d, "G": g if has_g else None}

    check_fits(path, nets, tensors)
    g, d = build(cfg)
    try:
        d.load_state_dict(strip_prefix(tensors, "D"))
        if g is not None and any(k.startswith("G.") for k in tensors):
            g.load_state_dict(strip_prefix(tensors, "G"))
        else:
            g = None
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit the model ({e})") from None
    d.to(device).eval()
    if g is not None:
        g.to(device).eval()
    return cfg, g, d, meta


@torch.no_grad()
def generate_tiles(g, n: int, bits: int, seed: int = 0, device="cpu") -> np.ndarray:
    """(n, C, H, W) float32 tiles in [0, 1] from the generator."""
    z = sample_noise(n, bits, torch.Generator().manual_seed(seed), device)
    return to_tile_range(g(z)).clamp(0, 1).cpu().numpy()
