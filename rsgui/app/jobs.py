"""Long jobs of the application as plain generators, free of Qt.

The panels run these in worker threads; the tests (and a script) run them directly. Each job
yields progress dicts and returns its result as the generator's value. This module is also the
one place where the application meets the training, generation and evaluation modules, so a
change of their signatures is absorbed here and nowhere else.

Progress dicts always carry ``event``: ``"progress"`` (``step``, ``total``, ``losses`` dict,
``images_per_s``, ``eta_s``, optional ``map``), ``"status"`` (``message``), ``"paused"`` or
``"resumed"`` (``step``), ``"prepare"`` (``step``, ``total``, ``message``: a phase before or
beside the training steps, e.g. reading tiles, fitting, encoding, evaluating).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

Flag = Callable[[], bool]


# --------------------------------------------------------------------------------------------
# Methods the training panel offers


@dataclass(frozen=True)
class MethodSpec:
    """What the training panel needs to know about a method to offer the right options."""

    key: str  # the name used by the command line and in checkpoints
    label: str  # what the user reads
    family: str  # spectral | uahm | cgan | deephash
    band_sets: tuple[str, ...]
    default_bands: str
    uses_bits: bool = True
    needs_labels: bool = False
    retrieval: bool = True  # a finished run can index an archive
    generator: bool = False  # a finished run makes samples (the samples panel)


METHODS: dict[str, MethodSpec] = {
    m.key: m
    for m in (
        MethodSpec("spectral", "Spectral features + ITQ (no training)", "spectral",
                   ("ms10", "rgb", "all"), "ms10"),
        MethodSpec("uahm", "UAHM", "uahm", ("ms10", "rgb"), "ms10"),
        MethodSpec("gan-ms", "GAN-MS", "uahm", ("ms10",), "ms10"),
        MethodSpec("gan-rgb", "GAN-RGB", "uahm", ("rgb",), "rgb"),
        MethodSpec("dhnn-ms", "DHNN-MS", "uahm", ("ms10",), "ms10"),
        MethodSpec("cdcgan", "Conditional DCGAN", "cgan", ("rgb", "ms10"), "rgb",
                   uses_bits=False, needs_labels=True, retrieval=False, generator=True),
        MethodSpec("acgan", "ACGAN", "cgan", ("rgb", "ms10"), "rgb",
                   uses_bits=False, needs_labels=True, retrieval=False, generator=True),
        MethodSpec("deephash", "Deep hashing", "deephash", ("rgb", "ms10"), "rgb",
                   needs_labels=True),
    )
}  # fmt: skip

PRESETS = ("quick", "thesis")


class JobError(RuntimeError):
    """A job that cannot run as asked; the message is shown to the user as it is."""


# --------------------------------------------------------------------------------------------
# Pause / cancel around any step generator


def controlled(
    it: Iterator[dict], cancel: Flag | None = None, pause: Flag | None = None, poll_s: float = 0.05
) -> Iterator[dict]:
    """Drive ``it`` step by step; while ``pause()`` holds, wait between steps (the worker thread
    sleeps, the window stays responsive). Cancel is the inner job's business: it checks the flag
    between its own steps and saves its checkpoint before it stops. Returns ``it``'s value."""
    cancelled = cancel or (lambda: False)
    last: dict = {"step": 0, "total": 0}
    while True:
        if pause is not None and pause() and not cancelled():
            yield {"event": "paused", "step": last.get("step", 0), "total": last.get("total", 0)}
            while pause() and not cancelled():
                time.sleep(poll_s)
            yield {"event": "resumed", "step": last.get("step", 0), "total": last.get("total", 0)}
        try:
            p = next(it)
        except StopIteration as stop:
            return stop.value
        p = normalise_progress(p)
        if p["event"] == "progress":
            last = p
        yield p


def normalise_progress(p: dict) -> dict:
    """Fill the keys the panels read, whatever the training module left out."""
    if "event" in p and p["event"] != "progress":
        return p
    out = dict(p)
    out["event"] = "progress"
    out.setdefault("step", 0)
    out.setdefault("total", 0)
    out["losses"] = {str(k): float(v) for k, v in (p.get("losses") or {}).items()}
    for key in ("images_per_s", "eta_s"):
        v = p.get(key)
        out[key] = float(v) if v is not None else math.nan
    if p.get("map") is not None:
        out["map"] = float(p["map"])
    return out


# --------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainingResult:
    """What a finished (or cancelled) run left behind."""

    method: str
    path: Path  # checkpoint (.safetensors) or, for ``spectral``, the index (.npz)
    is_index: bool = False
    cancelled: bool = False


def _archive_root(archive) -> Path:
    """The folder of a folder or an opened Archive (careful: ``Path.root`` is ``"/"``)."""
    if isinstance(archive, str | os.PathLike):
        return Path(archive)
    return Path(archive.root)


def _open_archive(archive):
    if not isinstance(archive, str | os.PathLike):
        return archive
    from rsgui.archive import Archive

    return Archive.open(archive)


def training_job(
    archive,
    method: str,
    out: str | Path,
    *,
    bands: str | None = None,
    bits: int = 64,
    steps: int | None = None,
    preset: str = "quick",
    device: str = "cpu",
    seed: int = 0,
    batch_size: int | None = None,
    checkpoint_every: int | None = None,
    resume: str | Path | None = None,
    options: dict | None = None,
    cancel: Flag | None = None,
    pause: Flag | None = None,
) -> Iterator[dict]:
    """Train ``method`` on ``archive`` (a folder or an opened Archive), writing ``out``.

    Returns a :class:`TrainingResult`. ``options`` carries method-specific extras (e.g. the
    deep hashing run's ``augment`` checkpoint and ``n_generated``)."""
    if method not in METHODS:
        raise JobError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    spec = METHODS[method]
    bands = bands or spec.default_bands
    if bands not in spec.band_sets:
        raise JobError(
            f"{spec.label} works on band sets {', '.join(spec.band_sets)}, not {bands!r}"
        )
    if preset not in PRESETS:
        raise JobError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    settings = dict(
        archive=archive, method=method, out=Path(out), bands=bands, bits=int(bits), steps=steps,
        preset=preset, device=device, seed=seed, batch_size=batch_size,
        checkpoint_every=checkpoint_every, resume=resume, options=dict(options or {}),
        cancel=cancel,
    )  # fmt: skip
    runner = {
        "spectral": _run_spectral,
        "uahm": _run_uahm,
        "cgan": _run_cgan,
        "deephash": _run_deephash,
    }[spec.family]
    result = yield from controlled(runner(**settings), cancel, pause)
    if isinstance(result, TrainingResult):
        result.cancelled = bool(cancel and cancel())
        return result
    return TrainingResult(method, Path(result), cancelled=bool(cancel and cancel()))


def _torch_device(device: str):
    """A torch device, or a message saying that this computer does not have it."""
    from training.device import pick_device

    try:
        return pick_device(device)
    except ValueError as e:
        raise JobError(f"{e}; choose the CPU") from None


def _run_cgan(archive, method, out, bands, steps, preset, device, seed, batch_size,
              checkpoint_every, resume, options, cancel, **_):  # fmt: skip
    from training import train_cgan as tc
    from training.cgan import CGANConfig

    yield {"event": "status", "message": "Reading the labelled tiles…"}
    data = yield from threaded_steps(tc.load_gan_data, _archive_root(archive), bands=bands)
    p = tc.PRESETS[preset]
    # options["model"]: network overrides (e.g. width, image_size) for quick looks and tests
    model_cfg = CGANConfig(method=method, **{**p["model"], **options.get("model", {})})
    train_kw = dict(p["train"], seed=seed)
    if steps is not None:
        train_kw["steps"] = int(steps)
    if batch_size is not None:
        train_kw["batch_size"] = int(batch_size)
    if checkpoint_every is not None:
        train_kw["checkpoint_every"] = int(checkpoint_every)
    train_cfg = tc.TrainConfig.from_dict(train_kw)
    return (
        yield from tc.train_cgan(data, out, model_cfg, train_cfg, device=_torch_device(device),
                                 resume=resume, cancel=cancel)
    )  # fmt: skip


def _run_uahm(archive, method, out, bands, bits, steps, preset, device, seed, batch_size,
              checkpoint_every, resume, options, cancel, **_):  # fmt: skip
    """uahm, dhnn-ms, gan-rgb, gan-ms: the command line's plan (tiles, similarity matrix,
    held-out MAP), then :func:`training.train_uahm.train`."""
    from training.ssm import ssm_for_archive
    from training.train_uahm import train
    from training.uahm_plan import checkpoint_meta, plan_run, read_tiles

    dev = _torch_device(device)
    yield {"event": "status", "message": "Opening the archive…"}
    arc = _open_archive(archive)
    try:
        plan = plan_run(
            arc, method, bands, bits, preset, seed, variant=options.get("variant"), steps=steps,
            batch_size=batch_size, checkpoint_every=checkpoint_every,
        )  # fmt: skip
    except ValueError as e:
        raise JobError(str(e)) from None
    settings = plan.settings
    if not settings.checkpoint_every:  # so that a cancel leaves a recent checkpoint
        settings.checkpoint_every = max(1, settings.steps // 10)

    yield {"event": "status", "message": f"Reading {len(plan.train_idx)} tiles…"}
    tiles = yield from threaded_steps(read_tiles, arc, plan.train_idx, plan.bands)
    ssm = None
    out = Path(out).with_suffix(".safetensors")
    if plan.model_cfg.binary:
        yield {"event": "status", "message": "Computing the similarity matrix…"}
        ssm = yield from threaded_steps(ssm_for_archive, arc, plan.train_idx, plan.ssm_cfg, dev,
                                        cache=out.with_suffix(".ssm.npz"))  # fmt: skip
    eval_data = None
    if plan.eval_idx is not None:
        eval_tiles = (
            tiles if plan.eval_on_training_tiles else read_tiles(arc, plan.eval_idx, plan.bands)
        )
        eval_data = (eval_tiles, arc.labels[plan.eval_idx])
    meta = checkpoint_meta(plan, arc, preset, dev, ssm)
    yield from train(plan.model_cfg, settings, tiles, ssm, out=out, meta=meta, device=dev,
                     eval_data=eval_data, resume=resume, cancel=cancel)  # fmt: skip
    return TrainingResult(method, out)


def _run_deephash(archive, method, out, bands, bits, steps, preset, device, seed, batch_size,
                  checkpoint_every, resume, options, cancel, **_):  # fmt: skip
    from training import train_deephash as td

    yield {"event": "status", "message": "Preparing the labelled tiles…"}
    augment = options.get("augment") or None
    n_generated = int(options.get("n_generated") or (1000 if augment else 0))
    data = yield from threaded_steps(
        td.prepare_data, archive, bands=bands, out=out, augment=augment,
        n_generated=n_generated, seed=seed, device=str(_torch_device(device)),
    )  # fmt: skip
    kw = dict(td.PRESETS[preset], seed=seed)
    if steps is not None:
        kw["steps"] = int(steps)
    if checkpoint_every is not None:
        kw["checkpoint_every"] = int(checkpoint_every)
    if batch_size is not None:  # the method's 2:1 split of one class and another
        kw["batch_pos"] = max(2, 2 * int(batch_size) // 3)
        kw["batch_neg"] = max(1, int(batch_size) - kw["batch_pos"])
    cfg = td.DeepHashTrainConfig.from_dict(kw)
    return (
        yield from td.train_deephash(data, out, bits, cfg, device=_torch_device(device),
                                     resume=resume, cancel=cancel)
    )  # fmt: skip


def _run_spectral(archive, out, bands, bits, cancel, **_):
    """The training-free method: fit the projection on the archive and write its index."""
    from rsgui.indexing import build_index
    from rsgui.spectral import SpectralEncoder

    yield {"event": "status", "message": "Opening the archive…"}
    arc = _open_archive(archive)
    yield {"event": "status", "message": "Fitting the spectral projection…"}
    encoder = yield from threaded_steps(SpectralEncoder.fit, arc, bands=bands, bits=bits,
                                        cancel=cancel)  # fmt: skip
    yield {"event": "status", "message": f"Encoding {len(arc)} tiles…"}
    index = yield from threaded_steps(build_index, arc, encoder, cancel=cancel)
    path = index.save(out)
    return TrainingResult("spectral", Path(path), is_index=True)


def threaded_steps(fn: Callable, *args, cancel: Flag | None = None, **kwargs) -> Iterator[dict]:
    """Run a callback-style job (``fn(..., progress=, cancel=)``) in a helper thread and yield
    its progress as ``"prepare"`` events, so it can be driven like the generator jobs. Returns
    its value and re-raises its error."""
    import queue
    import threading

    events: queue.Queue = queue.Queue()
    outcome: dict = {}

    def progress(done, total=None, note=""):
        events.put({"event": "prepare", "step": int(done), "total": int(total or 0),
                    "message": note})  # fmt: skip

    import inspect

    params = inspect.signature(fn).parameters
    if "cancel" in params:
        kwargs["cancel"] = cancel

    def work():
        try:
            outcome["value"] = fn(*args, progress=progress, **kwargs)
        except BaseException as e:  # handed to the driving thread
            outcome["error"] = e
        finally:
            events.put(None)

    thread = threading.Thread(target=work, name=getattr(fn, "__name__", "job"), daemon=True)
    thread.start()
    while (event := events.get()) is not None:
        yield event
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@dataclass
class IndexResult:
    path: Path
    n_tiles: int
    method: str


def index_job(archive, model_path: str | Path, out: str | Path,
              cancel: Flag | None = None) -> Iterator[dict]:  # fmt: skip
    """Index ``archive`` with the encoder of a finished model; returns an :class:`IndexResult`."""
    from rsgui.encoders import load_trained_encoder

    yield {"event": "status", "message": f"Loading {Path(model_path).name}…"}
    encoder = load_trained_encoder(model_path)
    yield {"event": "status", "message": "Opening the archive…"}
    arc = _open_archive(archive)
    yield {"event": "status", "message": f"Encoding {len(arc)} tiles…"}
    from rsgui.indexing import build_index

    index = yield from threaded_steps(build_index, arc, encoder, cancel=cancel)
    path = index.save(out)
    return IndexResult(Path(path), len(index), encoder.method)


@dataclass
class CheckpointInfo:
    path: Path
    method: str
    step: int | None
    total: int | None
    modified: float


def list_checkpoints(folder: str | Path) -> list[CheckpointInfo]:
    """Checkpoints in ``folder`` (newest first), read from their sidecars; unreadable ones skipped."""
    import json

    folder = Path(folder)
    out: list[CheckpointInfo] = []
    if not folder.is_dir():
        return out
    for p in folder.glob("*.safetensors"):
        if p.name.startswith("."):
            continue  # a temporary file being written
        try:
            meta = json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
            method = str(meta.get("method", "?"))
            step, total = meta.get("step"), meta.get("total_steps")
            out.append(CheckpointInfo(p, method, _int_or_none(step), _int_or_none(total),
                                      p.stat().st_mtime))  # fmt: skip
        except (OSError, ValueError, AttributeError):
            continue
    return sorted(out, key=lambda c: c.modified, reverse=True)


def _int_or_none(v) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Generation (conditional GANs)


@dataclass
class ModelInfo:
    """A conditional GAN checkpoint as the samples panel shows it."""

    path: Path
    method: str
    classes: tuple[str, ...]
    band_names: tuple[str, ...]
    normalisation: dict
    step: int | None = None


@dataclass
class SampleSet:
    """Generated tiles: ``pixels`` (N, C, H, W) float32 in [0, 1], bands named."""

    pixels: np.ndarray
    band_names: tuple[str, ...]
    class_name: str
    normalisation: dict
    seeds: list[int] = field(default_factory=list)
    source: str = ""  # checkpoint file name
    kind: str = "samples"  # samples | interpolation

    def __len__(self) -> int:
        return len(self.pixels)


def read_model_info(path: str | Path) -> ModelInfo:
    """The classes and bands of a conditional GAN checkpoint; ModelFileError names the file."""
    from rsgui.encoders import ModelFileError
    from training.checkpoint import load_checkpoint

    path = Path(path)
    _, meta = load_checkpoint(path)
    if meta.get("method") not in ("cdcgan", "acgan"):
        raise ModelFileError(
            f"{path.name}: a {meta.get('method')!r} model, not a conditional GAN "
            "(choose a cDCGAN or ACGAN checkpoint)"
        )
    classes = tuple(meta.get("classes") or ())
    if not classes:
        raise ModelFileError(f"{path.name}: the checkpoint lists no classes")
    return ModelInfo(path, meta["method"], classes, tuple(meta["band_names"]),
                     dict(meta.get("normalisation") or {}), _int_or_none(meta.get("step")))  # fmt: skip


def _loaded(info: ModelInfo, class_name: str):
    from training import generate as tg

    if class_name not in info.classes:
        raise JobError(
            f"{info.path.name}: no class {class_name!r}; it knows {', '.join(info.classes)}"
        )
    return tg, tg.load(info.path)


def generation_job(model: str | Path, class_name: str, n: int = 16, seed: int = 0,
                   cancel: Flag | None = None) -> Iterator[dict]:  # fmt: skip
    """``n`` samples of ``class_name`` from a cDCGAN/ACGAN checkpoint; returns a SampleSet.
    The same seed gives the same samples."""
    info = read_model_info(model)
    yield {"event": "status", "message": f"Generating {n} × {class_name}…"}
    tg, gen = _loaded(info, class_name)
    pixels = tg.generate(gen, class_name, int(n), seed=int(seed))
    return SampleSet(pixels, info.band_names, class_name, info.normalisation, [int(seed)],
                     info.path.name)  # fmt: skip


def interpolation_job(model: str | Path, class_name: str, seed_a: int, seed_b: int,
                      frames: int = 9, cancel: Flag | None = None) -> Iterator[dict]:  # fmt: skip
    """``frames`` tiles along the straight line between the noise vectors of two seeds."""
    info = read_model_info(model)
    yield {"event": "status", "message": f"Interpolating seed {seed_a} → {seed_b}…"}
    tg, gen = _loaded(info, class_name)
    z0, z1 = tg.random_noise(gen, int(seed_a)), tg.random_noise(gen, int(seed_b))
    pixels = tg.interpolate(gen, class_name, z0, z1, np.linspace(0.0, 1.0, int(frames)))
    return SampleSet(pixels, info.band_names, class_name, info.normalisation,
                     [int(seed_a), int(seed_b)], info.path.name, kind="interpolation")  # fmt: skip


def save_samples(samples: SampleSet, folder: str | Path) -> list[Path]:
    """Write the samples as GeoTIFFs in ``folder/<class>/`` (band names as band descriptions,
    values back in the archive's digital numbers): a labelled folder that training reads as extra
    tiles. Existing files of another seed are kept; the same seed overwrites its own."""
    from training.generate import save_tiles

    model = Path(samples.source).stem or "generated"
    if samples.kind == "samples":
        stem = f"{model}_s{samples.seeds[0] if samples.seeds else 0}"
    else:
        stem = f"{model}_interp_s{samples.seeds[0]}-{samples.seeds[-1]}"
    return save_tiles(samples.pixels, folder, samples.class_name, samples.band_names,
                      samples.normalisation or {"divisor": 4095.0}, stem=stem)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class EvalSummary:
    """One index's evaluation, with the file it came from (for the legend and the table)."""

    name: str  # index file stem
    path: Path
    evaluation: object  # rsgui.evaluation.Evaluation

    @property
    def label(self) -> str:
        e = self.evaluation
        return f"{self.name} ({e.method}, {e.bits} bits)"


def evaluation_job(indexes: Sequence[str | Path], k: Sequence[int] = (20, 100),
                   n: Sequence[int] = (10, 20),
                   cancel: Flag | None = None) -> Iterator[dict]:  # fmt: skip
    """Evaluate each labelled index, every tile a query against the others (leave-one-out);
    returns the :class:`EvalSummary` list in the order given. A bad file stops the job with an
    error naming it."""
    from rsgui import evaluation
    from rsgui.index import HashIndex

    out: list[EvalSummary] = []
    for i, path in enumerate(indexes):
        if cancel and cancel():
            break
        path = Path(path)
        yield {"event": "status", "message": f"Evaluating {path.name} ({i + 1}/{len(indexes)})…"}
        try:
            index = HashIndex.load(path)
        except (OSError, ValueError) as e:
            raise JobError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from None
        try:
            result = yield from threaded_steps(evaluation.evaluate, index, k=tuple(k), n=tuple(n),
                                               cancel=cancel)  # fmt: skip
        except ValueError as e:
            raise JobError(f"{path.name}: {e}") from None
        out.append(EvalSummary(path.stem, path, result))
    return out


def run_to_end(it: Iterator[dict], on_event: Callable[[dict], None] | None = None,
               progress: Callable[..., None] | None = None):  # fmt: skip
    """Drive a job to its end in the calling thread, handing every event to ``on_event`` and the
    step counts to ``progress(done, total, note)``; returns the job's value. The panels call this
    inside a worker thread, so the job finishes its own way (a cancelled training run still
    writes its checkpoint) whatever stops it."""
    while True:
        try:
            p = next(it)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(p)
        if progress is not None and p.get("event") in ("progress", "prepare"):
            progress(p.get("step", 0), p.get("total") or None, p.get("message", ""))
