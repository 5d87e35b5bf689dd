"""Training a method on an archive: one plan per method family (preset + overrides), one job.

The command line (``rsgui-cli train``) and the application's training panel both call
:func:`train_job`, so the same archive, method and settings train the same model whichever
started it. A plan reads the registry (:mod:`rsgui.encoders.registry`) for the method's family,
band sets and config flags, fills the trainer's settings from its preset and the caller's
overrides, and reads the tiles; the trainers in ``training/`` only see arrays.

Every function here that takes long is a job (a generator yielding
:class:`rsgui.progress.Progress`, stages ``read``, ``features``, ``similarity``, ``train``,
``encode``); closing it cancels, and a trainer writes a resumable checkpoint as it stops.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsgui import metrics, ranking
from rsgui.bands import BAND_SETS, resolve_band_set
from rsgui.encoders.registry import PRESETS, MethodSpec, method
from rsgui.errors import JobError
from rsgui.progress import Job, Progress
from rsgui.services.generation import int_or_none, write_unconditional

# Generated tiles a deep-hashing run adds when it is given a conditional GAN and no count.
DEFAULT_N_GENERATED = 5000
# Labelled archives at least this big keep a held-out sample for the MAP shown while training.
HOLDOUT_MIN_TILES = 1000
HOLDOUT_MAX = 500


@dataclass
class TrainingResult:
    """What a finished run left behind."""

    method: str
    path: Path  # checkpoint (.safetensors) or, for ``spectral``, the index (.npz)
    is_index: bool = False
    cancelled: bool = False
    step: int | None = None
    metrics: dict = field(default_factory=dict)  # e.g. {"map@20": 0.61}
    eval: str = ""  # what the MAP was measured on


# ---------------------------------------------------------------------------- shared checks


def torch_device(device: str | None):
    """A torch device, or a JobError saying that this computer does not have it."""
    from training.device import pick_device

    try:
        return pick_device(device or "auto")
    except ValueError as e:
        raise JobError(f"{e}; choose the CPU") from None


def spec_of(name: str) -> MethodSpec:
    try:
        return method(name)
    except ValueError as e:
        raise JobError(str(e)) from None


def check_band_set(spec: MethodSpec, name: str) -> None:
    """Refuse a band set the method is not defined on (custom lists: UAHM family only)."""
    if name in spec.band_sets:
        return
    if name not in BAND_SETS and spec.family == "uahm" and "," in name:
        return  # a custom band list, checked against the archive and the method below
    sets = " or ".join(spec.band_sets)
    why = "; it is a multispectral method" if "rgb" not in spec.band_sets else ""
    raise JobError(f"{spec.key} trains on band sets {sets}, not {name!r}{why}")


def output_path(out: str | os.PathLike) -> Path:
    """Checkpoints are ``.safetensors`` files (with a ``.json`` sidecar)."""
    out = Path(out)
    return out if out.suffix == ".safetensors" else out.with_suffix(".safetensors")


def read_tiles(archive, indices, bands, dtype=np.float16) -> Job[np.ndarray]:
    """(N, C, H, W) tiles (float16 by default: half the memory, the loops convert batches)."""
    h, w = archive.tile_shape
    out = np.empty((len(indices), len(bands), h, w), dtype=dtype)
    done = 0
    for batch in archive.iter_batches(bands=list(bands), batch_size=256, indices=indices):
        out[done : done + len(batch.pixels)] = batch.pixels
        done += len(batch.pixels)
        yield Progress(done, len(indices), "reading tiles", "read")
    return out


def _open_archive(archive):
    if not isinstance(archive, str | os.PathLike):
        return archive
    from rsgui.archive import Archive

    return Archive.open(archive)


# ---------------------------------------------------------------------------- UAHM family


@dataclass
class UAHMPlan:
    method: str
    bands: tuple[str, ...]
    model_cfg: object  # training.uahm.UAHMConfig
    settings: object  # training.train_uahm.TrainSettings
    ssm_cfg: object  # training.ssm.SSMConfig
    train_idx: np.ndarray
    eval_idx: np.ndarray | None  # None: unlabelled; train_idx itself: MAP on the training tiles

    @property
    def eval_on_training_tiles(self) -> bool:
        return self.eval_idx is self.train_idx

    @property
    def eval_note(self) -> str:
        if self.eval_idx is None:
            return "none (no labels)"
        return "training tiles" if self.eval_on_training_tiles else "held-out sample"


def resolve_uahm_bands(spec: MethodSpec, bands: str | None, available) -> tuple[str, ...]:
    """The method's band set: refuses an RGB-only method on more bands and a multispectral one
    on three."""
    name = bands or spec.default_bands
    check_band_set(spec, name)
    wanted = resolve_band_set(name if name in BAND_SETS else name.split(","), available)
    if spec.band_sets == ("rgb",) and set(wanted) != set(BAND_SETS["rgb"]):
        raise JobError(f"{spec.key} trains on band sets rgb, not {name!r}")
    if "rgb" not in spec.band_sets and len(wanted) <= 3:
        raise JobError(
            f"{spec.key} is a multispectral method; {name!r} gives only {len(wanted)} bands"
        )
    return wanted


def plan_uahm(
    archive,
    method_key: str,
    bands: str | None = None,
    bits: int = 64,
    preset: str = "quick",
    seed: int = 0,
    variant: str | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    checkpoint_every: int | None = None,
    amp: bool = False,
) -> UAHMPlan:
    """Check the archive fits the method and fix the settings (JobError naming the archive)."""
    from training.train_uahm import preset_config

    spec = spec_of(method_key)
    if len(archive) < 2:
        raise JobError(
            f"{archive.root}: needs at least 2 readable tiles to train, has {len(archive)}"
        )
    band_names = resolve_uahm_bands(spec, bands, archive.band_names)
    h, w = archive.tile_shape
    if h != w:
        raise JobError(f"{archive.root}: tiles are {h}x{w}; training needs square tiles")
    variant = variant or ("thesis" if preset == "thesis" else "improved")
    model_cfg, settings, ssm_cfg = preset_config(
        spec.key, preset, len(archive), bits=bits, channels=len(band_names), image_size=h,
        variant=variant, feature_dim=extractor_dim(band_names) if variant == "improved" else 0,
        **spec.config,
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
    return UAHMPlan(spec.key, band_names, model_cfg, settings, ssm_cfg, train_idx, eval_idx)


def extractor_dim(band_names) -> int:
    """Length of the training-free vectors a UAHM model on features sees; 0 when the backbone
    is not installed or the bands lack true colour (the improved variant then trains on
    pixels)."""
    from rsgui.encoders.pretrained import RGB, PretrainedEncoder, backbone_installed

    if any(b not in band_names for b in RGB) or not backbone_installed():
        return 0
    return PretrainedEncoder.feature_dim(len(band_names))


def warm_up() -> None:
    """Import the training code and take one tiny optimiser step before the first run.

    torch imports parts of itself on first use (autograd, the optimisers' helpers), and an import
    keeps the interpreter busy for a hundred milliseconds or more at a time; done here, in a
    worker while the panel is idle, that no longer stalls the window during a run."""
    import torch

    import training.backbone  # noqa: F401
    import training.train_cgan  # noqa: F401
    import training.train_deephash  # noqa: F401
    import training.train_uahm  # noqa: F401

    net = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.zeros(3, 4)).square().mean().backward()
    opt.step()


def map_evaluator(labels: np.ndarray, k: int, binary: bool):
    """``codes -> {"map": MAP@k}`` with every tile querying the others (the one ranker)."""
    labels = np.asarray(labels)

    def evaluate(codes: np.ndarray) -> dict[str, float]:
        order = ranking.leave_one_out(codes, binary, k)
        rel = labels[order] == labels[:, None]
        return {"map": metrics.map_at_k(rel, order.shape[1])}

    return evaluate


def _uahm_job(archive, spec, out, bands, bits, steps, preset, device, seed, batch_size,
              checkpoint_every, resume, variant, amp, n_generated, **_):  # fmt: skip
    from rsgui.services.similarity import ssm_job
    from training.train_uahm import train

    arc = _open_archive(archive)
    plan = plan_uahm(
        arc, spec.key, bands, bits, preset, seed, variant=variant, steps=steps,
        batch_size=batch_size, checkpoint_every=checkpoint_every, amp=amp,
    )  # fmt: skip
    if plan.model_cfg.input == "features":
        return (yield from _uahm_features_job(arc, plan, out, preset, device, resume))
    tiles = yield from read_tiles(arc, plan.train_idx, plan.bands)
    ssm = None
    if plan.model_cfg.binary:
        ssm = yield from ssm_job(arc, plan.train_idx, plan.ssm_cfg, device,
                                 cache=out.with_suffix(".ssm.npz"))  # fmt: skip
    eval_tiles = evaluate = None
    if plan.eval_idx is not None:
        eval_tiles = tiles
        if not plan.eval_on_training_tiles:
            eval_tiles = yield from read_tiles(arc, plan.eval_idx, plan.bands)
        k = plan.settings.eval_k
        evaluate = map_evaluator(arc.labels[plan.eval_idx], k, plan.model_cfg.binary)
    meta = _uahm_meta(arc, plan, preset, device, ssm)
    path = yield from train(
        plan.model_cfg, plan.settings, tiles, ssm, out=out, meta=meta, device=device,
        eval_tiles=eval_tiles, evaluate=evaluate, resume=resume,
    )  # fmt: skip
    if n_generated and plan.model_cfg.adversarial:
        write_unconditional(path, int(n_generated), out.with_name(out.stem + "_generated"), seed)
    return path


def _uahm_meta(arc, plan: UAHMPlan, preset, device, ssm, **extra) -> dict:
    """What every UAHM-family checkpoint records of its run (the sidecar JSON)."""
    return {
        "band_names": list(plan.bands),
        "normalisation": arc.normalisation.to_dict(),
        "archive_root": str(arc.root),
        "n_train_tiles": int(len(plan.train_idx)),
        "eval": plan.eval_note,
        "preset": preset,
        "device": str(device),
        "ssm": {**plan.ssm_cfg.to_dict(), **ssm.info} if ssm else {},
        **extra,
    }


def _uahm_features_job(arc, plan: UAHMPlan, out: Path, preset, device, resume) -> Job[Path]:
    """The improved variant: the training-free vectors of the training tiles (through the
    archive's feature cache, which the index made with the model then reuses), their kNN graph
    (cached beside the model), then the hash network on them."""
    from rsgui.encoders.uahm import extractor_state
    from rsgui.services.similarity import extractor_job, knn_ssm_job
    from training.train_uahm import train

    enc, raw = yield from extractor_job(arc, plan.train_idx, plan.bands)
    x = enc.standardise(raw)
    ssm = yield from knn_ssm_job(arc, plan.train_idx, x, plan.ssm_cfg, device,
                                 cache=out.with_suffix(".ssm.npz"))  # fmt: skip
    eval_x = evaluate = None
    if plan.eval_idx is not None:
        eval_x = x
        if not plan.eval_on_training_tiles:
            _, raw_e = yield from extractor_job(arc, plan.eval_idx, plan.bands, enc)
            eval_x = enc.standardise(raw_e)
        evaluate = map_evaluator(arc.labels[plan.eval_idx], plan.settings.eval_k, True)
    meta = _uahm_meta(arc, plan, preset, device, ssm, extractor=extractor_state(enc))
    return (
        yield from train(plan.model_cfg, plan.settings, x, ssm, out=out, meta=meta, device=device,
                         eval_tiles=eval_x, evaluate=evaluate, resume=resume)
    )  # fmt: skip


# ---------------------------------------------------------------------------- conditional GANs


def plan_cgan(
    spec: MethodSpec,
    preset: str = "quick",
    seed: int = 0,
    steps: int | None = None,
    batch_size: int | None = None,
    checkpoint_every: int | None = None,
    model: dict | None = None,
):
    """(CGANConfig, TrainConfig) of a preset with overrides; ``model``: network overrides
    (e.g. width, image_size) for quick looks and tests."""
    from training.cgan import CGANConfig
    from training.train_cgan import PRESETS as CGAN_PRESETS
    from training.train_cgan import TrainConfig

    p = CGAN_PRESETS[preset]
    model_cfg = CGANConfig(**{**p["model"], **spec.config, **(model or {})})
    train_kw = dict(p["train"], seed=seed)
    if steps is not None:
        train_kw["steps"] = int(steps)
    if batch_size is not None:
        train_kw["batch_size"] = int(batch_size)
    if checkpoint_every is not None:
        train_kw["checkpoint_every"] = int(checkpoint_every)
    return model_cfg, TrainConfig.from_dict(train_kw)


def load_gan_data(archive, bands: str = "rgb", indices=None) -> Job:
    """The labelled tiles of an archive (all, or ``indices``) in a band set, as GANData."""
    from training.train_cgan import GANData

    arc = _open_archive(archive)
    if not arc.classes:
        raise JobError(
            f"{arc.root}: the archive has no class folders; a conditional GAN needs labels"
        )
    idx = np.arange(len(arc)) if indices is None else np.asarray(indices)
    idx = idx[arc.labels[idx] >= 0]
    band_names = resolve_band_set(bands, arc.band_names)
    pixels = yield from read_tiles(arc, idx, band_names, dtype=np.float32)
    return GANData(
        pixels=pixels,
        labels=arc.labels[idx].astype(np.int64),
        classes=tuple(arc.classes),
        band_names=tuple(band_names),
        normalisation=arc.normalisation.to_dict(),
        source=str(arc.root),
    )


def _cgan_job(archive, spec, out, bands, steps, preset, device, seed, batch_size,
              checkpoint_every, resume, model, **_):  # fmt: skip
    from training.train_cgan import train_cgan

    name = bands or spec.default_bands
    check_band_set(spec, name)
    data = yield from load_gan_data(archive, bands=name)
    model_cfg, train_cfg = plan_cgan(spec, preset, seed, steps, batch_size, checkpoint_every,
                                     model)  # fmt: skip
    return (yield from train_cgan(data, out, model_cfg, train_cfg, device, resume=resume))


# ---------------------------------------------------------------------------- deep hashing


def plan_deephash(
    preset: str = "quick",
    seed: int = 0,
    steps: int | None = None,
    batch_size: int | None = None,
    checkpoint_every: int | None = None,
    variant: str = "thesis",
):
    """DeepHashTrainConfig of a preset and variant. For the method's network ``batch_size`` is
    split 2:1 into tiles of the anchor class and of another class, as the method does; the
    improved one draws ``batch_size`` random tiles."""
    from training.train_deephash import preset_config

    try:
        cfg = preset_config(preset, variant)
    except ValueError as e:
        raise JobError(str(e)) from None
    cfg.seed = seed
    if steps is not None:
        cfg.steps = int(steps)
    if checkpoint_every is not None:
        cfg.checkpoint_every = int(checkpoint_every)
    if batch_size is not None:
        if int(batch_size) < 3:
            raise JobError("deep hashing needs a batch size of at least 3")
        cfg.batch = int(batch_size)
        cfg.batch_pos = max(2, round(int(batch_size) * 2 / 3))
        cfg.batch_neg = int(batch_size) - cfg.batch_pos
    return cfg


def deephash_variant(variant: str | None, preset: str) -> str:
    """The improved network unless asked otherwise (thesis preset: the method's), falling back
    to the method's when the backbone it fine-tunes is not installed."""
    from training.backbone import installed

    if variant:
        return variant
    if preset == "thesis" or not installed("efficientnet-lite0"):
        return "thesis"
    return "improved"


def prepare_deephash_data(
    archive,
    bands: str = "rgb",
    out=None,
    augment=None,
    n_generated: int = 0,
    seed: int = 0,
    device="cpu",
    indices=None,
    features: dict | None = None,
    variant: str = "thesis",
) -> Job:
    """Real tiles of ``archive`` (``indices`` to restrict it) plus ``n_generated`` tiles of the
    GAN ``augment``, as network inputs (a DeepHashData): the method's network takes rgb
    features (cached per tile beside the archive's indexes) or ms10 tiles, the improved one
    tiles of either set."""
    import torch

    from training.train_deephash import (
        DeepHashData,
        generated_tiles,
        inception_features_job,
    )

    arc = _open_archive(archive)
    if not arc.classes:
        raise JobError(f"{arc.root}: supervised hashing needs a labelled archive (class folders)")
    idx = np.arange(len(arc)) if indices is None else np.asarray(indices, dtype=np.int64)
    idx = idx[arc.labels[idx] >= 0]
    band_names = tuple(BAND_SETS["rgb" if bands == "rgb" else "ms10"])
    dtype = np.float16 if variant == "improved" else np.float32
    real = yield from read_tiles(arc, idx, band_names, dtype=dtype)
    labels = arc.labels[idx].astype(np.int64)
    gen_x = np.zeros((0, *real.shape[1:]), np.float32)
    gen_y = np.zeros(0, np.int64)
    if augment and n_generated:
        yield Progress(0, None, f"generating {n_generated} tiles", "generate")
        gen_x, gen_y = generated_tiles(augment, tuple(arc.classes), n_generated, band_names, seed)
        if gen_x.shape[-2:] != real.shape[-2:]:
            gen_x = torch.nn.functional.interpolate(
                torch.from_numpy(gen_x), size=real.shape[-2:], mode="area"
            ).numpy()
    settings = None
    if variant == "improved":  # tiles in, kept as float16: 26,000 RGB tiles in 640 MB
        inputs = np.concatenate([real, gen_x]).astype(np.float16)
    elif bands == "rgb":  # the tiles' features through the archive's cache, shared with indexing
        from rsgui.encoders.deephash import inception_features_cached_job

        settings = feature_settings(arc, features)
        inputs = yield from inception_features_cached_job(arc, settings, device, idx, real)
        if len(gen_x):
            gen_f = yield from inception_features_job(gen_x, settings, device)
            inputs = np.concatenate([inputs, gen_f])
    else:
        inputs = np.concatenate([real, gen_x])
    return DeepHashData(
        inputs=inputs,
        labels=np.concatenate([labels, gen_y]),
        generated=np.concatenate([np.zeros(len(labels), bool), np.ones(len(gen_y), bool)]),
        classes=tuple(arc.classes),
        band_names=band_names,
        normalisation=arc.normalisation.to_dict(),
        bands=bands,
        features=settings,
        augment_source=Path(augment).name if augment and n_generated else None,
        source=str(arc.root),
    )


def feature_settings(archive, features: dict | None = None) -> dict:
    """How this archive's true colour becomes Inception input: ``features`` as given, else the
    defaults with the gain chosen by the archive's scaling. The 2.5 gain brightens 12-bit
    reflectance as EuroSAT's RGB images were rendered; on those display-scaled 8-bit images it
    saturates 36 % of the pixels and, measured on 2,000 EuroSAT RGB tiles, drops the kNN P@10
    of the features from 0.710 (gain 1) to 0.593."""
    from training.train_deephash import DEFAULT_FEATURES

    if features is not None:
        return dict(features)
    settings = dict(DEFAULT_FEATURES)
    if archive.normalisation.divisor <= 255:  # already display-scaled (8-bit)
        settings["rgb_gain"] = 1.0
    return settings


def _deephash_job(archive, spec, out, bands, bits, steps, preset, device, seed, batch_size,
                  checkpoint_every, resume, augment, n_generated, variant=None, **_):  # fmt: skip
    from training.train_deephash import train_deephash

    name = bands or spec.default_bands
    check_band_set(spec, name)
    if n_generated and not augment:
        raise JobError("generated tiles need a conditional GAN checkpoint to make them")
    n_gen = int(n_generated) if n_generated is not None else (DEFAULT_N_GENERATED if augment else 0)
    variant = deephash_variant(variant, preset)
    cfg = plan_deephash(preset, seed, steps, batch_size, checkpoint_every, variant)
    data = yield from prepare_deephash_data(archive, name, out, augment or None, n_gen, seed,
                                            str(device), variant=variant)  # fmt: skip
    return (yield from train_deephash(data, out, int(bits), cfg, device, resume=resume))


# ---------------------------------------------------------------------------- spectral


def _spectral_job(archive, spec, out, bands, bits, seed=0, **_):
    """The training-free method: fit the projection on the archive and write its index (the
    index service's one path)."""
    from rsgui.services.indexing import index_job

    name = bands or spec.default_bands
    check_band_set(spec, name)
    result = yield from index_job(_open_archive(archive), spec.key, out, bands=name,
                                  bits=int(bits), seed=seed)  # fmt: skip
    return result.path


# ---------------------------------------------------------------------------- the one job


def train_job(
    archive,
    method_key: str,
    out: str | os.PathLike,
    *,
    bands: str | None = None,
    bits: int = 64,
    steps: int | None = None,
    preset: str = "quick",
    device: str | None = "auto",
    seed: int = 0,
    batch_size: int | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike | None = None,
    variant: str | None = None,
    augment: str | os.PathLike | None = None,
    n_generated: int | None = None,
    amp: bool = False,
    model: dict | None = None,
) -> Job[TrainingResult]:
    """Train ``method_key`` on ``archive`` (a folder or an opened Archive), writing ``out``.

    ``augment``: a conditional GAN checkpoint whose tiles (``n_generated``, default
    :data:`DEFAULT_N_GENERATED`) join a deep-hashing run; for the UAHM family ``n_generated``
    tiles of the trained generator are written beside the model. ``model``: network overrides
    of the conditional GANs (quick looks, tests). Returns a :class:`TrainingResult`; a bad
    setting raises :class:`JobError` before anything is read.
    """
    spec = spec_of(method_key)
    if preset not in PRESETS:
        raise JobError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    if augment and spec.family != "deephash":
        raise JobError(f"--augment names a conditional GAN for deephash; not used by {spec.key}")
    if spec.family != "spectral" and (bands or spec.default_bands) in BAND_SETS:
        check_band_set(spec, bands or spec.default_bands)
    if spec.family == "spectral":
        path = yield from _spectral_job(archive, spec, Path(out), bands, bits, seed)
        return TrainingResult(spec.key, Path(path), is_index=True)
    out = output_path(out)
    if resume is not None:
        check_resume_archive(resume, archive)
    dev = torch_device(device)
    run = {"uahm": _uahm_job, "cgan": _cgan_job, "deephash": _deephash_job}[spec.family]
    path = yield from run(
        archive, spec, out=out, bands=bands, bits=bits, steps=steps, preset=preset, device=dev,
        seed=seed, batch_size=batch_size, checkpoint_every=checkpoint_every,
        resume=None if resume is None else Path(resume), variant=variant, amp=amp,
        n_generated=n_generated, augment=augment, model=model,
    )  # fmt: skip
    meta = _sidecar(Path(path))
    return TrainingResult(
        spec.key, Path(path), step=int_or_none(meta.get("step")),
        metrics={k: v for k, v in (meta.get("metrics") or {}).items() if k != "map_history"},
        eval=str(meta.get("eval", "")),
    )  # fmt: skip


def check_resume_archive(resume, archive) -> None:
    """Refuse to resume a run on another archive than the one it was trained on (a resumed run
    continues the same run: same tiles, same similarity matrix); JobError naming both."""
    meta = _sidecar(Path(resume))
    trained_on = meta.get("archive_root")
    if not trained_on:
        return  # the sidecar does not say (checkpoints written before it was recorded)
    root = archive if isinstance(archive, str | os.PathLike) else getattr(archive, "root", None)
    if root is None:
        return
    here = Path(root).expanduser().resolve()
    if Path(trained_on).resolve() != here:
        raise JobError(
            f"{resume}: trained on archive {trained_on}, not {here}; resuming would mix two "
            "runs (train afresh on this archive, or resume on that one)"
        )


def _sidecar(path: Path) -> dict:
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


# ---------------------------------------------------------------------------- checkpoints


@dataclass
class CheckpointInfo:
    path: Path
    method: str
    step: int | None
    total: int | None
    modified: float


def list_checkpoints(folder: str | Path) -> list[CheckpointInfo]:
    """Checkpoints in ``folder`` (newest first), read from their sidecars; unreadable ones skipped."""
    folder = Path(folder)
    out: list[CheckpointInfo] = []
    if not folder.is_dir():
        return out
    for p in folder.glob("*.safetensors"):
        if p.name.startswith("."):
            continue  # a temporary file being written
        try:
            meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
            step, total = meta.get("step"), meta.get("total_steps")
            out.append(CheckpointInfo(p, str(meta.get("method", "?")), int_or_none(step),
                                      int_or_none(total), p.stat().st_mtime))  # fmt: skip
        except (OSError, ValueError, AttributeError):
            continue
    return sorted(out, key=lambda c: c.modified, reverse=True)
