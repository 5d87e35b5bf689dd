"""Training loop for uahm, dhnn-ms, gan-rgb and gan-ms: a plain generator, no Qt.

    for p in train(model_cfg, settings, tiles, ssm, out="m.safetensors", meta=...):
        print(p["step"], p["losses"])                    # progress dicts; last one has "done"

Each step: a batch of real tiles (optionally flipped / rotated), the discriminator step on real
and generated tiles (plus the hash terms on the real ones), then the generator step (the method
updates both every step). dhnn-ms has no generator and no adversarial term.

Repeatability: every random draw of step ``t`` (batch, noise, augmentation) comes from a
generator seeded with ``(seed, t)``, so a run resumed from a checkpoint at step k continues
exactly as the uninterrupted run would (bit for bit on CPU). Checkpoints hold the weights of both
networks and the Adam state (moments and step counts) as safetensors tensors, so resuming does
not restart the optimiser. A cancel leaves the last checkpoint as it was (writes are atomic).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from training.checkpoint import load_checkpoint, save_checkpoint
from training.losses import discriminator_loss, generator_loss
from training.uahm import UAHMConfig, build, sample_noise, to_model_range, to_tile_range

Cancel = Callable[[], bool]


@dataclass
class TrainSettings:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    w_binary: float = 0.1  # w1 of eq. 5.8
    w_semantic: float = 0.1  # w2 of eq. 5.8
    dissimilar_target: float = -1.0  # target code product of dissimilar pairs (-1 = method)
    pair_sampling: bool = False  # half of each batch: a similar partner of the other half
    seed: int = 0
    augment: bool = False  # random flips and 90-degree rotations of real tiles
    amp: bool = False  # bfloat16 autocast on CUDA
    checkpoint_every: int = 500  # steps between checkpoints (0: only at the end)
    eval_every: int = 0  # steps between held-out MAP evaluations (0: never)
    eval_k: int = 20  # MAP@k of those evaluations
    log_every: int = 10  # steps between history entries

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def preset_config(
    method: str,
    preset: str,
    n_tiles: int,
    bits: int = 64,
    channels: int = 10,
    image_size: int = 64,
    variant: str = "thesis",
):
    """(model config, train settings, SSM config) of a preset and variant.

    ``thesis``: the method's networks and hyperparameters (batch 64, Adam 1e-4 / 0.5 / 0.999,
    w1 = w2 = 0.1, K1 / K2 = 500 / 300 per 5,000 tiles, fused local histogram + Inception with
    eta = 6). ``quick``: narrower networks (a quarter of the channels) and few steps, sized to
    finish within minutes on two CPU cores; same losses.

    ``variant='improved'`` changes what was shown to help on real tiles (numbers below):
    half of each batch are similar partners of the other half, dissimilar pairs aim at
    orthogonal codes (target 0, not -1), and the hash terms weigh more against the adversarial
    one. Flips / rotations (``augment``) stay available but off. Batch norm running statistics
    ignore generated tiles in both variants (an evaluation fix, see :func:`frozen_bn_stats`).
    """
    from training.ssm import SSMConfig

    if preset not in ("quick", "thesis"):
        raise ValueError(f"unknown preset {preset!r}; choose quick or thesis")
    model = UAHMConfig(
        method=method, bits=bits, channels=channels, image_size=image_size, variant=variant,
        width=1.0 if preset == "thesis" else QUICK_WIDTH,
    )  # fmt: skip
    settings = TrainSettings()
    if preset == "thesis":
        # the method gives no step count: 100 passes over the training set, at least 2,000 steps
        settings.steps = max(2000, 100 * math.ceil(n_tiles / settings.batch_size))
    else:
        settings.steps = QUICK_STEPS
        settings.batch_size = QUICK_BATCH
        settings.lr = QUICK_LR
        settings.checkpoint_every = 0
    ssm = SSMConfig(inception_size=139)  # 96 px loses a quarter of the IoU (see ssm.py)
    if variant == "improved":
        settings.augment = IMPROVED_AUGMENT
        settings.w_semantic = IMPROVED_W_SEMANTIC
        settings.w_binary = IMPROVED_W_BINARY
        settings.dissimilar_target = IMPROVED_DISSIMILAR
        settings.pair_sampling = True
    return model, settings, ssm


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


class TrainingCancelled(Exception):
    """Raised by :func:`run_training` when the cancel flag was set."""


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random source of one step: the same for a resumed and an uninterrupted run."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and rotation by k * 90 degrees per tile (the 8 dihedral views):
    land cover has no up or left, so these keep the tile's class and its similarity row."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    rot = torch.randint(0, 4, (len(x),), generator=gen)
    out = x.clone()
    out[flip.to(x.device)] = out[flip.to(x.device)].flip(-1)
    for k in (1, 2, 3):
        m = (rot == k).to(x.device)
        if m.any():
            out[m] = torch.rot90(out[m], k, dims=(-2, -1))
    return out


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


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """Adam state as flat tensors ``prefix.<param index>.<name>`` (safetensors has no nesting)."""
    out = {}
    for idx, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            out[f"{prefix}.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().clone()
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict, prefix: str) -> bool:
    """Restore what :func:`optimizer_tensors` stored; False when the file holds no state."""
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    if not state:
        return False
    sd["state"] = state
    opt.load_state_dict(sd)
    return True


def _prefixed(module: torch.nn.Module | None, prefix: str) -> dict[str, torch.Tensor]:
    if module is None:
        return {}
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def _unprefixed(tensors: dict, prefix: str) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


@torch.no_grad()
def encode(d, tiles, device, batch_size: int = 256) -> np.ndarray:
    """(N, l) float32 codes (tanh outputs) or features of tiles in [0, 1], eval mode."""
    was = d.training
    d.eval()
    out = []
    for s in range(0, len(tiles), batch_size):
        x = torch.as_tensor(tiles[s : s + batch_size]).to(device, torch.float32)
        out.append(d(to_model_range(x))[1].float().cpu())
    d.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, d.cfg.bits), np.float32)


def leave_one_out_map(codes: np.ndarray, labels: np.ndarray, k: int, binary: bool) -> float:
    """MAP@k with every tile querying the others: Hamming on signs, or cosine for features."""
    from rsgui.metrics import map_at_k

    labels = np.asarray(labels)
    c = torch.as_tensor(codes, dtype=torch.float32)
    if binary:
        b = torch.where(c > 0, 1.0, -1.0)
        score = b @ b.t()  # = bits - 2 * Hamming
    else:
        c = c / c.norm(dim=1, keepdim=True).clamp_min(1e-12)
        score = c @ c.t()
    score.fill_diagonal_(-math.inf)
    k = min(k, len(codes) - 1)
    # stable order: ties by index, as the index's own search
    order = torch.argsort(-score, dim=1, stable=True)[:, :k].numpy()
    rel = labels[order] == labels[:, None]
    return map_at_k(rel, k)


def train(
    model_cfg: UAHMConfig,
    settings: TrainSettings,
    tiles: np.ndarray | torch.Tensor,
    ssm=None,
    out: str | Path | None = None,
    meta: dict | None = None,
    device: str | torch.device = "cpu",
    eval_data: tuple[np.ndarray, np.ndarray] | None = None,
    resume: str | Path | None = None,
    cancel: Cancel | None = None,
) -> Iterator[dict]:
    """Train and yield progress dicts ``{step, total, losses, images_per_s, eta_s, map?}``.

    ``tiles`` (N, C, H, W) in [0, 1] (float16 is fine and halves memory); ``ssm`` (an
    :class:`training.ssm.SSM` over the same N tiles) is needed by uahm and dhnn-ms. ``meta`` goes
    into every checkpoint sidecar (band names, normalisation...). ``eval_data`` = (tiles, labels)
    for the held-out MAP. A cancel stops between steps; the last yielded dict then has
    ``cancelled=True`` and the checkpoint on disk is the last complete one.
    """
    device = torch.device(device)
    tiles = torch.as_tensor(tiles)
    n = len(tiles)
    if tiles.ndim != 4 or tiles.shape[1] != model_cfg.channels:
        raise ValueError(f"tiles must be (N, {model_cfg.channels}, H, W), got {tuple(tiles.shape)}")
    if tuple(tiles.shape[-2:]) != (model_cfg.image_size, model_cfg.image_size):
        raise ValueError(
            f"tiles are {tiles.shape[-2]}x{tiles.shape[-1]}, the model expects "
            f"{model_cfg.image_size}x{model_cfg.image_size}"
        )
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
        start, history, metrics = _restore(resume, model_cfg, g, d, opt_g, opt_d, device)
    if start > settings.steps:
        raise ValueError(f"{resume}: already trained {start} steps, more than {settings.steps}")

    use_amp = settings.amp and device.type == "cuda"
    meta = dict(meta or {})

    def checkpoint(step: int) -> Path | None:
        if out is None:
            return None
        tensors = {**_prefixed(d, "D"), **_prefixed(g, "G"), **optimizer_tensors(opt_d, "optD")}
        if opt_g is not None:
            tensors.update(optimizer_tensors(opt_g, "optG"))
        full = {
            **meta,
            "method": model_cfg.method,
            "bits": model_cfg.bits,
            "tile_size": model_cfg.image_size,
            "model": model_cfg.to_dict(),
            "training": settings.to_dict(),
            "step": step,
            "metrics": metrics,
            "history": history,
            "optimizer_state": "stored",
        }
        return save_checkpoint(out, tensors, full)

    t0, last_losses = time.perf_counter(), {}
    for step in range(start, settings.steps):
        if cancel is not None and cancel():
            yield {"step": step, "total": settings.steps, "losses": last_losses, "cancelled": True}
            return
        rng = step_generator(settings.seed, step)
        idx = torch.randperm(n, generator=rng)[:batch]
        if settings.pair_sampling and semantic:
            idx = with_partners(idx[: (batch + 1) // 2], ssm, rng)[:batch]
        x = tiles[idx].to(device, torch.float32)
        if settings.augment:
            x = augment_batch(x, rng)
        x = to_model_range(x)
        s = torch.from_numpy(ssm.block(idx.numpy())).to(device) if semantic else None
        z = sample_noise(batch, model_cfg.bits, rng, device) if g is not None else None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            last_losses = _step(d, g, opt_d, opt_g, x, z, s, settings, model_cfg)
        done = step + 1
        if settings.log_every and (done % settings.log_every == 0 or done == settings.steps):
            history.append({"step": done, **{k: round(v, 5) for k, v in last_losses.items()}})
        elapsed = time.perf_counter() - t0
        rate = (done - start) * batch / max(elapsed, 1e-9)
        prog = {
            "step": done,
            "total": settings.steps,
            "losses": last_losses,
            "images_per_s": rate,
            "eta_s": (settings.steps - done) * batch / max(rate, 1e-9),
        }
        if (
            eval_data is not None
            and settings.eval_every
            and (done % settings.eval_every == 0 or done == settings.steps)
        ):
            codes = encode(d, eval_data[0], device)
            m = leave_one_out_map(codes, eval_data[1], settings.eval_k, model_cfg.binary)
            metrics[f"map@{settings.eval_k}"] = m
            metrics.setdefault("map_history", []).append([done, round(m, 5)])
            prog["map"] = m
        if out is not None and (
            done == settings.steps
            or (settings.checkpoint_every and done % settings.checkpoint_every == 0)
        ):
            prog["checkpoint"] = str(checkpoint(done))
        if done == settings.steps:
            prog["done"] = True
        yield prog
    if start == settings.steps:  # nothing left to do
        yield {"step": start, "total": settings.steps, "losses": {}, "done": True}


def _step(d, g, opt_d, opt_g, x, z, s, settings: TrainSettings, cfg: UAHMConfig) -> dict:
    """One discriminator update then one generator update; returns the loss parts."""
    if g is None:  # dhnn-ms: hash terms only
        _, h = d(x)
        loss, parts = discriminator_loss(
            None, None, h, s, settings.w_binary, settings.w_semantic, settings.dissimilar_target
        )
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
    )
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    with frozen_bn_stats(d):
        logit, _ = d(fake)
    loss_g = generator_loss(logit.float())
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    parts["g"] = float(loss_g.detach())
    return parts


def _restore(path, cfg: UAHMConfig, g, d, opt_g, opt_d, device) -> tuple[int, list, dict]:
    """Load weights and optimiser state of a checkpoint into the fresh networks."""
    from rsgui.encoders import ModelFileError

    tensors, meta = load_checkpoint(path, expected_method=cfg.method)
    saved = UAHMConfig.from_dict(meta.get("model", {}))
    if saved != cfg:
        raise ModelFileError(f"{path}: made with model settings {saved}, not {cfg}")
    try:
        d.load_state_dict(_unprefixed(tensors, "D"))
        if g is not None:
            g.load_state_dict(_unprefixed(tensors, "G"))
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit the model ({e})") from None
    load_optimizer_tensors(opt_d, tensors, "optD")
    if opt_g is not None:
        load_optimizer_tensors(opt_g, tensors, "optG")
    for opt in (opt_d, opt_g):
        if opt is None:
            continue
        for st in opt.state.values():
            for k, v in st.items():
                if torch.is_tensor(v) and k != "step":
                    st[k] = v.to(device)
    return int(meta.get("step", 0)), list(meta.get("history", [])), dict(meta.get("metrics", {}))


def run_training(*args, progress: Callable[[dict], None] | None = None, **kwargs) -> dict:
    """Consume :func:`train`, passing every progress dict to ``progress``; return the last one.
    Raises :class:`TrainingCancelled` when cancelled."""
    last: dict = {}
    for p in train(*args, **kwargs):
        last = p
        if progress is not None:
            progress(p)
    if last.get("cancelled"):
        raise TrainingCancelled(f"cancelled at step {last['step']}")
    return last


def load_networks(path: str | Path, method: str | None = None, device="cpu"):
    """(config, generator | None, discriminator, meta) of a checkpoint, in eval mode."""
    from rsgui.encoders import ModelFileError

    tensors, meta = load_checkpoint(path, expected_method=method)
    try:
        cfg = UAHMConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: model settings missing or invalid ({e})") from None
    g, d = build(cfg)
    try:
        d.load_state_dict(_unprefixed(tensors, "D"))
        if g is not None and any(k.startswith("G.") for k in tensors):
            g.load_state_dict(_unprefixed(tensors, "G"))
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


def write_generated_geotiffs(
    tiles: np.ndarray, folder: str | Path, band_names, normalisation: dict, prefix="generated"
) -> list[Path]:
    """Write generated tiles as uint16 GeoTIFFs (values back in the archive's scale) with band
    names as band descriptions, so the archive reader knows each band. No georeference:
    generated tiles lie nowhere."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from rsgui.atomic import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scale = float(normalisation.get("divisor", 4095.0))
    paths = []
    for i, t in enumerate(tiles):
        values = np.clip(np.rint(t * scale), 0, 65535).astype(np.uint16)
        target = folder / f"{prefix}_{i:04d}.tif"
        with atomic_path(target) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(
                tmp, "w", driver="GTiff", width=t.shape[2], height=t.shape[1],
                count=t.shape[0], dtype="uint16",
            ) as dst:  # fmt: skip
                dst.write(values)
                for b, name in enumerate(band_names, start=1):
                    dst.set_band_description(b, name)
        paths.append(target)
    return paths
