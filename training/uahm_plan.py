"""What an unsupervised run trains on: band set, preset settings, held-out split and the settings
stored with the checkpoint. Shared by the command line and the application's training panel, so
both train the same way; each reads the tiles and builds the similarity matrix with its own
progress reporting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training import train_uahm
from training.ssm import SSMConfig
from training.train_uahm import TrainSettings
from training.uahm import UAHMConfig

# Band set each method is defined on.
DEFAULT_BANDS = {"uahm": "ms10", "dhnn-ms": "ms10", "gan-rgb": "rgb", "gan-ms": "ms10"}
# Labelled archives at least this big keep a held-out sample for the MAP shown while training.
HOLDOUT_MIN_TILES = 1000
HOLDOUT_MAX = 500


def resolve_bands(method: str, bands: str | None, available: tuple[str, ...]) -> tuple[str, ...]:
    """The method's band set, refusing a contradiction (gan-rgb on ms10, gan-ms on rgb)."""
    from rsgui.bands import BAND_SETS, resolve_band_set

    name = bands or DEFAULT_BANDS[method]
    wanted = resolve_band_set(name if name in BAND_SETS else name.split(","), available)
    if method == "gan-rgb" and set(wanted) != set(BAND_SETS["rgb"]):
        raise ValueError(
            f"gan-rgb trains on the rgb bands, not {name!r}; use gan-ms for more bands"
        )
    if method in ("gan-ms", "uahm", "dhnn-ms") and len(wanted) <= 3:
        raise ValueError(
            f"{method} is a multispectral method; {name!r} gives only {len(wanted)} bands"
        )
    return wanted


def read_tiles(archive, indices, bands, progress=None) -> np.ndarray:
    """(N, C, H, W) float16 tiles (half the memory of float32; the loop converts batches)."""
    h, w = archive.tile_shape
    out = np.empty((len(indices), len(bands), h, w), dtype=np.float16)
    done = 0
    for batch in archive.iter_batches(bands=list(bands), batch_size=256, indices=indices):
        out[done : done + len(batch.pixels)] = batch.pixels
        done += len(batch.pixels)
        if progress:
            progress(done, len(indices), "reading tiles")
    return out


@dataclass
class RunPlan:
    bands: tuple[str, ...]
    model_cfg: UAHMConfig
    settings: TrainSettings
    ssm_cfg: SSMConfig
    train_idx: np.ndarray
    eval_idx: np.ndarray | None  # None: unlabelled; train_idx itself: MAP on the training tiles

    @property
    def eval_on_training_tiles(self) -> bool:
        return self.eval_idx is self.train_idx


def plan_run(
    archive,
    method: str,
    bands: str | None,
    bits: int,
    preset: str,
    seed: int,
    variant: str | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    checkpoint_every: int | None = None,
    amp: bool = False,
) -> RunPlan:
    """Check the archive fits the method and fix the settings; raises ValueError naming the
    archive when it does not."""
    if len(archive) < 2:
        raise ValueError(
            f"{archive.root}: needs at least 2 readable tiles to train, has {len(archive)}"
        )
    band_names = resolve_bands(method, bands, archive.band_names)
    h, w = archive.tile_shape
    if h != w:
        raise ValueError(f"{archive.root}: tiles are {h}x{w}; training needs square tiles")
    variant = variant or ("thesis" if preset == "thesis" else "improved")
    model_cfg, settings, ssm_cfg = train_uahm.preset_config(
        method, preset, len(archive), bits=bits, channels=len(band_names), image_size=h,
        variant=variant,
    )  # fmt: skip
    settings.seed = seed
    settings.amp = bool(amp)
    if steps is not None:
        settings.steps = int(steps)
    if batch_size is not None:
        settings.batch_size = int(batch_size)
    if checkpoint_every is not None:
        settings.checkpoint_every = int(checkpoint_every)
    ssm_cfg.spectral_bands = tuple(band_names)

    all_idx = np.arange(len(archive))
    labelled = bool(archive.classes) and bool((archive.labels >= 0).all())
    train_idx, eval_idx = all_idx, None
    if labelled and len(archive) >= HOLDOUT_MIN_TILES:
        rng = np.random.default_rng(seed)
        size = min(HOLDOUT_MAX, len(all_idx) // 10)
        eval_idx = np.sort(rng.choice(all_idx, size=size, replace=False))
        train_idx = np.setdiff1d(all_idx, eval_idx)
    elif labelled:
        eval_idx = train_idx  # small archive: the MAP shown is on the training tiles themselves
    if eval_idx is not None and not settings.eval_every:
        settings.eval_every = max(1, settings.steps // 5)
    return RunPlan(band_names, model_cfg, settings, ssm_cfg, train_idx, eval_idx)


def checkpoint_meta(plan: RunPlan, archive, preset: str, device, ssm) -> dict:
    """Settings stored in the checkpoint's JSON sidecar besides what the loop writes."""
    return {
        "band_names": list(plan.bands),
        "normalisation": archive.normalisation.to_dict(),
        "archive_root": str(archive.root),
        "n_train_tiles": int(len(plan.train_idx)),
        "eval": (
            "none (no labels)"
            if plan.eval_idx is None
            else "training tiles"
            if plan.eval_on_training_tiles
            else "held-out sample"
        ),
        "preset": preset,
        "device": str(device),
        "ssm": {**plan.ssm_cfg.to_dict(), **ssm.info} if ssm else {},
    }
