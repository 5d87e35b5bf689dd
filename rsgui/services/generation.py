"""Generated tiles: samples and interpolations of a conditional GAN, and writing them as GeoTIFFs.

Written tiles form a labelled folder (``DIR/CLASS/*.tif``, band names in the band descriptions,
values scaled back to the archive's digital numbers) that opens as an archive or joins a training
set. Generated tiles carry no georeference: they lie nowhere. Every file goes through
:func:`rsgui.geotiff.write_geotiff`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsgui.encoders.registry import method
from rsgui.errors import JobError, ModelFileError
from rsgui.geotiff import write_geotiff
from rsgui.paths import inside, safe_name
from rsgui.progress import Job, Progress


@dataclass
class ModelInfo:
    """A conditional GAN checkpoint as the samples panel shows it."""

    path: Path
    method: str
    classes: tuple[str, ...]
    band_names: tuple[str, ...]
    normalisation: dict
    step: int | None = None


def read_model_info(path: str | Path) -> ModelInfo:
    """The classes and bands of a conditional GAN checkpoint; ModelFileError names the file."""
    from training.checkpoint import load_checkpoint

    path = Path(path)
    _, meta = load_checkpoint(path)
    found = meta.get("method")
    try:
        generator = method(found).generator
    except ValueError:
        generator = False
    if not generator:
        raise ModelFileError(
            f"{path.name}: a {found!r} model, not a conditional GAN "
            "(choose a cDCGAN or ACGAN checkpoint)"
        )
    classes = tuple(meta.get("classes") or ())
    if not classes:
        raise ModelFileError(f"{path.name}: the checkpoint lists no classes")
    return ModelInfo(path, found, classes, tuple(meta["band_names"]),
                     dict(meta.get("normalisation") or {}), int_or_none(meta.get("step")))  # fmt: skip


def int_or_none(v) -> int | None:
    """A sidecar's count as an int, None when absent or not a number."""
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None


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


def _loaded(info: ModelInfo, class_name: str, device: str = "cpu"):
    from training.generate import load

    if class_name not in info.classes:
        raise JobError(
            f"{info.path.name}: no class {class_name!r}; it knows {', '.join(info.classes)}"
        )
    return load(info.path, device)


def generation_job(
    model: str | Path, class_name: str, n: int = 16, seed: int = 0
) -> Job[SampleSet]:
    """``n`` samples of ``class_name`` from a cDCGAN/ACGAN checkpoint; returns a SampleSet.
    The same seed gives the same samples."""
    from training.generate import generate

    info = read_model_info(model)
    yield Progress(0, None, f"Generating {n} × {class_name}…", "generate")
    gen = _loaded(info, class_name)
    pixels = generate(gen, class_name, int(n), seed=int(seed))
    return SampleSet(pixels, info.band_names, class_name, info.normalisation, [int(seed)],
                     info.path.name)  # fmt: skip


def interpolation_job(
    model: str | Path, class_name: str, seed_a: int, seed_b: int, frames: int = 9
) -> Job[SampleSet]:
    """``frames`` tiles along the straight line between the noise vectors of two seeds."""
    from training.generate import interpolate, random_noise

    info = read_model_info(model)
    yield Progress(0, None, f"Interpolating seed {seed_a} → {seed_b}…", "generate")
    gen = _loaded(info, class_name)
    z0, z1 = random_noise(gen, int(seed_a)), random_noise(gen, int(seed_b))
    pixels = interpolate(gen, class_name, z0, z1, np.linspace(0.0, 1.0, int(frames)))
    return SampleSet(pixels, info.band_names, class_name, info.normalisation,
                     [int(seed_a), int(seed_b)], info.path.name, kind="interpolation")  # fmt: skip


def to_digital_numbers(images: np.ndarray, normalisation: dict) -> np.ndarray:
    """[0, 1] -> uint16 file values (inverse of ``min(value, clip) / divisor``)."""
    dn = np.rint(np.clip(images, 0, 1) * float(normalisation.get("divisor", 4095.0)))
    return np.clip(dn, 0, 65535).astype(np.uint16)


def write_tiles(
    images: np.ndarray, paths: Sequence[Path], band_names: Sequence[str], normalisation: dict
) -> list[Path]:
    """(N, C, H, W) [0, 1] tiles as uint16 GeoTIFFs at ``paths``, band names as descriptions."""
    dn = to_digital_numbers(images, normalisation)
    out = []
    for tile, p in zip(dn, paths, strict=True):
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        out.append(write_geotiff(p, tile, list(band_names)))
    return out


def save_tiles(
    images: np.ndarray,
    out_dir: str | Path,
    class_name: str,
    band_names: Sequence[str],
    normalisation: dict,
    stem: str = "generated",
) -> list[Path]:
    """Write (N, C, H, W) [0, 1] tiles to ``out_dir/class_name/CLASS_STEM_00000.tif``...

    The class name and stem come from a model's sidecar: they are checked to be plain names
    (:func:`rsgui.paths.safe_name`) so nothing is written outside ``out_dir``."""
    safe_name(class_name, "class name")
    safe_name(stem, "file name part")
    folder = inside(out_dir, class_name)
    names = [folder / f"{class_name}_{stem}_{i:05d}.tif" for i in range(len(images))]
    return write_tiles(images, names, band_names, normalisation)


def save_samples(samples: SampleSet, folder: str | Path) -> list[Path]:
    """Write the samples as GeoTIFFs in ``folder/<class>/``: a labelled folder that training
    reads as extra tiles. Existing files of another seed are kept; the same seed overwrites its
    own."""
    model = Path(samples.source).stem or "generated"
    if samples.kind == "samples":
        stem = f"{model}_s{samples.seeds[0] if samples.seeds else 0}"
    else:
        stem = f"{model}_interp_s{samples.seeds[0]}-{samples.seeds[-1]}"
    return save_tiles(samples.pixels, folder, samples.class_name, samples.band_names,
                      samples.normalisation or {"divisor": 4095.0}, stem=stem)  # fmt: skip


def generate_folder(
    ckpt,
    out_dir: str | Path,
    class_names: list[str] | None,
    n: int,
    seed: int = 0,
    device: str = "cpu",
) -> Job[list[Path]]:
    """Generate ``n`` tiles for each class (all classes when ``class_names`` is None) into
    ``out_dir/CLASS/``; yields one Progress per class."""
    from training.generate import generate, load

    gen = load(ckpt, device)
    names = list(gen.classes) if class_names is None else list(class_names)
    for name in names:
        gen.class_index(name)  # fail before writing anything
        safe_name(name, "class name", ckpt if isinstance(ckpt, str | Path) else None)
    norm = gen.meta["normalisation"]
    paths: list[Path] = []
    for j, name in enumerate(names):
        imgs = generate(gen, name, n, seed=seed)  # same tiles as generate(ckpt, name, n, seed)
        paths += save_tiles(imgs, out_dir, name, gen.band_names, norm, stem=f"s{seed}")
        yield Progress(j + 1, len(names), name, "generate")
    return paths


def write_unconditional(model_path: str | Path, n: int, folder: str | Path, seed: int = 0):
    """``n`` tiles from the generator of a UAHM-family model (no classes) as
    ``folder/generated_0000.tif``...; returns the paths."""
    from rsgui.encoders.uahm import config_defaults
    from training.train_uahm import generate_tiles, load_networks

    cfg, g, _, meta = load_networks(model_path, device="cpu", defaults=config_defaults(model_path))
    if g is None:
        raise ModelFileError(f"{model_path}: a model without a generator makes no tiles")
    folder = Path(folder)
    tiles = generate_tiles(g, n, cfg.bits, seed)
    names = [folder / f"generated_{i:04d}.tif" for i in range(len(tiles))]
    return write_tiles(tiles, names, meta["band_names"], meta["normalisation"])
