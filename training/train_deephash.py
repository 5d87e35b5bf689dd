"""Train supervised deep hashing on real tiles, optionally enlarged by conditional-GAN tiles.

Inputs (:class:`DeepHashData`) are prepared by the caller: Inception v3 features of the
true-colour tiles (``rgb``, the method; :func:`inception_features`) or the ten-band pixels
(``ms10``). Each step draws the method's batch: 64 tiles of one class (32 anchors, 32 positives)
and 32 of another (negatives). The loop follows the common trainer contract
(:mod:`training.common`): it yields Progress, returns the checkpoint path, and a closed generator
writes a resumable checkpoint first.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rsgui.bands import band_indices
from rsgui.errors import ModelFileError, TrainingDiverged
from rsgui.progress import Job, drive
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
from training.deephash import (
    DeepHashConfig,
    DeepHashNet,
    balance_loss,
    binary_loss,
    triplet_loss,
    triplet_loss_all,
)
from training.deephash_improved import (
    BackboneHashNet,
    centre_loss,
    hash_centres,
    quantisation_loss,
)
from training.generate import generate, load
from training.inception import extract_features_job, load_inception

# How true-colour tiles become Inception features. ``rgb_gain`` brightens the dark 12-bit
# reflectances roughly as the EuroSAT RGB images are rendered (the network was trained on photos).
DEFAULT_FEATURES: dict = {"extractor": "inception-v3", "input_size": 139, "rgb_gain": 2.5}


@dataclass
class DeepHashTrainConfig(ConfigMixin):
    steps: int = 3000
    batch_pos: int = 64  # tiles of the anchor class: half anchors, half positives
    batch_neg: int = 32  # tiles of another class: negatives
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.9
    # alpha, beta, gamma are not given by the method; these were chosen on the 311-tile subset
    margin_frac: float = 0.25  # alpha = margin_frac * bits (squared distances of outputs in [0,1])
    beta: float = 0.01  # binary loss weight (eq. 4.10); larger values saturate the outputs early
    gamma: float = 1.0  # balance loss weight (eq. 4.11)
    # method: the batch's 32 (a, p, n) triples; all (default, beyond the method): every
    # (a, p, n) triple of the same 64 + 32 batch, which learns faster from few tiles
    triplets: str = "all"
    augment: bool = True  # ms10 only: random flips/transposes of the tiles
    checkpoint_every: int = 1000
    history_every: int = 0
    seed: int = 0
    features: dict = field(default_factory=lambda: dict(DEFAULT_FEATURES))
    model: dict = field(default_factory=dict)  # DeepHashConfig overrides (e.g. cnn_width)
    # improved variant (training.deephash_improved): random batches of ``batch`` tiles, AdamW
    # with a warm-up and a cosine decay of ``lr``, centre + q_weight * quantisation loss
    variant: str = "thesis"
    batch: int = 64
    weight_decay: float = 1e-4
    warmup_frac: float = 0.1
    q_weight: float = 0.1


PRESETS: dict[str, dict] = {
    "thesis": {"steps": 20_000, "features": {**DEFAULT_FEATURES, "input_size": 299}},
    "quick": {"steps": 800, "lr": 3e-4, "checkpoint_every": 400, "model": {"cnn_width": 16}},
    "cpu": {"steps": 4000, "lr": 3e-4, "checkpoint_every": 1000},  # 139 px features, 2 cores
}
# The improved variant fine-tunes the backbone: about 90 tiles/s at 64 px on 2 cores, so the
# cpu preset's 800 steps of 64 tiles (two passes over 25,000 tiles) take about 10 minutes
_IMPROVED_MODEL = {"dropout": 0.2}
IMPROVED_PRESETS: dict[str, dict] = {
    "thesis": {
        "steps": 4000,
        "checkpoint_every": 500,
        "model": {**_IMPROVED_MODEL, "input_size": 128},
    },
    "quick": {"steps": 150, "checkpoint_every": 50, "model": _IMPROVED_MODEL},
    "cpu": {"steps": 800, "checkpoint_every": 100, "model": _IMPROVED_MODEL},
}
IMPROVED_PRESETS = {k: {"lr": 1e-3, **v} for k, v in IMPROVED_PRESETS.items()}
VARIANTS = ("improved", "thesis")


def preset_config(preset: str, variant: str = "improved") -> DeepHashTrainConfig:
    """The training settings of ``preset`` for ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown deep-hashing variant {variant!r}; known: {', '.join(VARIANTS)}")
    table = IMPROVED_PRESETS if variant == "improved" else PRESETS
    return DeepHashTrainConfig.from_dict({**table[preset], "variant": variant})


@dataclass
class DeepHashData:
    """Training inputs: (N, 2048) features (rgb) or (N, C, H, W) tiles (ms10), with labels."""

    inputs: np.ndarray
    labels: np.ndarray  # (N,) int64 index into classes
    generated: np.ndarray  # (N,) bool: made by a GAN
    classes: tuple[str, ...]
    band_names: tuple[str, ...]
    normalisation: dict
    bands: str  # rgb | ms10
    features: dict | None  # feature settings for rgb, None for ms10
    augment_source: str | None = None
    source: str | None = None  # the archive the tiles came from; a resume must use the same

    @property
    def n_real(self) -> int:
        return int((~self.generated).sum())

    @property
    def n_generated(self) -> int:
        return int(self.generated.sum())


_INCEPTION: dict = {}


def inception_features(rgb01: np.ndarray, settings: dict, device="cpu") -> np.ndarray:
    """(N, 3, H, W) true-colour tiles in [0, 1] -> (N, 2048) float32 Inception v3 features."""
    return drive(inception_features_job(rgb01, settings, device))


def inception_features_job(rgb01: np.ndarray, settings: dict, device="cpu") -> Job[np.ndarray]:
    """:func:`inception_features` as a job (one Progress per batch, stage ``features``)."""
    key = (settings.get("weights"), int(settings["input_size"]), str(device))
    if key not in _INCEPTION:
        _INCEPTION.clear()
        _INCEPTION[key] = load_inception(settings.get("weights"), device, key[1])
    x = np.clip(np.asarray(rgb01, np.float32) * float(settings.get("rgb_gain", 1.0)), 0, 1)
    # no grad mode around the yields: it would leak into the consumer; the network's own
    # forward runs without gradients
    f = yield from extract_features_job(_INCEPTION[key], x, batch_size=32, device=device)
    return f.numpy().astype(np.float32)


def generated_tiles(
    gan_ckpt, classes: tuple[str, ...], n_total: int, band_names: tuple[str, ...], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n_total`` tiles spread evenly over ``classes``, in ``band_names`` order, with labels."""
    gen = load(gan_ckpt)
    unknown = [c for c in gen.classes if c not in classes]
    if unknown:
        raise ValueError(
            f"{gan_ckpt}: the GAN knows classes the archive lacks: {', '.join(unknown)}"
        )
    pick = band_indices(gen.band_names, band_names)
    per = np.full(len(gen.classes), n_total // len(gen.classes))
    per[: n_total % len(gen.classes)] += 1
    tiles, labels = [], []
    for j, (name, m) in enumerate(zip(gen.classes, per, strict=True)):
        if m:
            tiles.append(generate(gen, name, int(m), seed=seed + 7919 * j)[:, pick])
            labels.append(np.full(int(m), classes.index(name), np.int64))
    if not tiles:
        return np.zeros((0, len(band_names), 64, 64), np.float32), np.zeros(0, np.int64)
    return np.concatenate(tiles), np.concatenate(labels)


def build_net(cfg: DeepHashConfig, pretrained: bool = False) -> torch.nn.Module:
    """The network of ``cfg``; ``pretrained``: the improved variant starts from ImageNet."""
    if cfg.variant == "improved":
        return BackboneHashNet(cfg, pretrained)
    if cfg.variant != "thesis":
        raise ValueError(f"unknown deep-hashing variant {cfg.variant!r}")
    return DeepHashNet(cfg)


def model_config(data: DeepHashData, bits: int, cfg: DeepHashTrainConfig) -> DeepHashConfig:
    """The network settings for ``data``: its input width and, improved, where its RGB is."""
    model_cfg = DeepHashConfig(bits=bits, bands=data.bands, variant=cfg.variant, **cfg.model)
    if cfg.variant == "improved":
        if data.inputs.ndim != 4:
            raise ValueError("the improved deep hashing trains on tiles, not on features")
        model_cfg.channels = data.inputs.shape[1]
        model_cfg.rgb_index = list(band_indices(data.band_names, ("B04", "B03", "B02")))
    elif data.bands == "ms10":
        model_cfg.channels = data.inputs.shape[1]
    else:
        model_cfg.in_features = data.inputs.shape[1]
    return model_cfg


def train_deephash(
    data: DeepHashData,
    out: str | Path,
    bits: int,
    cfg: DeepHashTrainConfig | None = None,
    device: str | torch.device = "cpu",
    resume: str | Path | None = None,
) -> Job[Path]:
    """Yields one Progress per step (``values``: the losses); returns the checkpoint path."""
    device = torch.device(device)
    cfg = cfg or DeepHashTrainConfig()
    model_cfg = model_config(data, bits, cfg)
    improved = cfg.variant == "improved"
    step, history, tensors = 0, [], {}
    if resume is not None:
        tensors, meta = load_checkpoint(resume, "deephash")
        try:
            model_cfg = DeepHashConfig.from_dict(meta["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"{resume}: not a deep-hashing checkpoint ({e})") from None
        if (model_cfg.bits, model_cfg.bands, model_cfg.variant) != (bits, data.bands, cfg.variant):
            raise ValueError(
                f"{resume}: a {model_cfg.bits}-bit {model_cfg.bands} {model_cfg.variant} model, "
                f"not {bits}-bit {data.bands} {cfg.variant}"
            )
        step, history = int(meta["step"]), list(meta.get("history", []))
        check_fits(resume, lambda: {"net": build_net(model_cfg)}, tensors)

    torch.manual_seed(cfg.seed)
    rng = torch.Generator().manual_seed(cfg.seed + 1)
    net = build_net(model_cfg, pretrained=improved and not tensors).to(device).train()
    if improved:
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    if tensors:
        try:
            net.load_state_dict(strip_prefix(tensors, "net"))
        except RuntimeError as e:
            raise ModelFileError(f"{resume}: weights do not fit the model ({e})") from None
        load_optimizer_tensors(opt, tensors, "opt")
        if "rng" in tensors:
            rng.set_state(tensors["rng"])

    x_all = torch.from_numpy(np.ascontiguousarray(data.inputs))
    if not improved:
        x_all = x_all.float()
    check_inputs(x_all, "training inputs")
    if not tensors:
        sample = x_all[torch.randperm(len(x_all), generator=rng)[:2000]] if improved else x_all
        net.set_standardisation(sample.to(device))
    y = np.asarray(data.labels)
    by_class = [torch.from_numpy(np.flatnonzero(y == c)) for c in range(len(data.classes))]
    usable = [c for c, m in enumerate(by_class) if len(m) >= 2]
    if len(usable) < 2:
        raise ValueError("deep hashing needs at least two classes with two or more tiles each")
    margin = cfg.margin_frac * model_cfg.bits
    total = cfg.steps
    every = cfg.history_every or max(1, total // 400)
    half = cfg.batch_pos // 2
    centres = torch.from_numpy(hash_centres(len(data.classes), model_cfg.bits, cfg.seed))
    y_all = torch.from_numpy(y.astype(np.int64))

    saved_step = step if resume is not None else None

    def checkpoint() -> Path:
        nonlocal saved_step
        ts = add_prefix(net.state_dict(), "net") | optimizer_tensors(opt, "opt")
        ts["rng"] = rng.get_state()
        meta = {
            "method": "deephash",
            "band_names": list(data.band_names),
            "bits": model_cfg.bits,
            "normalisation": data.normalisation,
            "classes": list(data.classes),
            "config": model_cfg.to_dict(),
            "features": data.features,
            "train": cfg.to_dict(),
            "step": step,
            "total_steps": total,
            "n_real": data.n_real,
            "n_generated": data.n_generated,
            "augment": data.augment_source,
            "history": history,
            **({"archive_root": data.source} if data.source else {}),
        }
        path = save_checkpoint(out, ts, meta)
        saved_step = step
        return path

    def draw(c: int, m: int) -> torch.Tensor:
        pool = by_class[c]
        return pool[torch.randint(0, len(pool), (m,), generator=rng)]

    def thesis_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The method's batch: 64 tiles of one class (anchors, positives), 32 of another."""
        ca = usable[int(torch.randint(0, len(usable), (1,), generator=rng))]
        others = [c for c in usable if c != ca]
        cb = others[int(torch.randint(0, len(others), (1,), generator=rng))]
        xb = x_all[torch.cat([draw(ca, cfg.batch_pos), draw(cb, cfg.batch_neg)])]
        if data.bands == "ms10" and cfg.augment:
            xb = augment(xb, rng)
        f = net(xb.to(device))  # (96, bits)
        fa, fn = f[: cfg.batch_pos], f[cfg.batch_pos :]
        if cfg.triplets == "all":
            l_tri = triplet_loss_all(fa, fn, margin)
        else:
            m = min(half, len(fn))
            l_tri = triplet_loss(fa[:m], fa[half : half + m], fn[:m], margin)
        l_bin, l_bal = binary_loss(f), balance_loss(f)
        loss = l_tri + cfg.beta * l_bin + cfg.gamma * l_bal
        return loss, {"triplet": l_tri, "binary": l_bin, "balance": l_bal}

    def improved_step() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Random tiles, each pulled to its class's centre; lr warms up, then decays."""
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, total, cfg.warmup_frac)
        idx = torch.randint(0, len(x_all), (cfg.batch,), generator=rng)
        xb = augment(x_all[idx].float(), rng) if cfg.augment else x_all[idx].float()
        u = net.codes(xb.to(device))  # (B, bits) in (-1, 1)
        l_c = centre_loss(u, centres[y_all[idx]].to(device))
        l_q = quantisation_loss(u)
        return l_c + cfg.q_weight * l_q, {"centre": l_c, "quantise": l_q}

    one_step = improved_step if improved else thesis_step
    batch = cfg.batch if improved else cfg.batch_pos + cfg.batch_neg
    acc: dict[str, float] = {}
    n_acc = 0
    rate = StepRate(step, total, batch)
    try:
        while step < total:
            loss, parts = one_step()
            losses = {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}}
            check_losses(step + 1, losses, out, saved_step)  # before the weights take it
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            for k, v in losses.items():
                acc[k] = acc.get(k, 0.0) + v
            n_acc += 1
            if step % every == 0 or step == total:
                history.append({"step": step, **{k: v / n_acc for k, v in acc.items()}})
                acc, n_acc = {}, 0
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                checkpoint()
            yield rate.progress(step, losses)
    except GeneratorExit:  # cancelled: a checkpoint of the steps done, resumable
        with contextlib.suppress(TrainingDiverged):  # never over a good one with NaN weights
            checkpoint()
        raise
    return checkpoint()


def lr_factor(step: int, total: int, warmup_frac: float) -> float:
    """Linear warm-up over ``warmup_frac`` of the steps, then a cosine decay to zero."""
    warm = max(1, round(total * warmup_frac))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@torch.no_grad()
def hash_outputs(
    net: torch.nn.Module, inputs: np.ndarray, device="cpu", batch_size: int = 256
) -> np.ndarray:
    """Sigmoid outputs (N, bits) of a trained net on prepared inputs (features or tiles)."""
    net.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size], np.float32))
        out.append(net(xb.to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, net.cfg.bits), np.float32)


def load_net(path, device="cpu") -> tuple[torch.nn.Module, dict]:
    tensors, meta = load_checkpoint(path, "deephash")
    try:
        cfg = DeepHashConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: not a deep-hashing checkpoint ({e})") from None
    check_fits(path, lambda: {"net": build_net(cfg)}, tensors)
    net = build_net(cfg)
    net.load_state_dict(strip_prefix(tensors, "net"))
    return net.to(device).eval(), meta
