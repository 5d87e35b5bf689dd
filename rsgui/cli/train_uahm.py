"""``rsgui-cli train --method uahm|dhnn-ms|gan-rgb|gan-ms``: unsupervised training on an archive.

Reads the archive, builds (or reuses) the unsupervised similarity matrix for the hashing methods,
trains with a preset, writes the checkpoint (and its JSON settings) and prints what it measured.
The similarity matrix is cached beside the checkpoint (``MODEL.ssm.npz``) so a resumed or repeated
run does not recompute it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rsgui.cli import CliError
from rsgui.cli.progress import ProgressBar

# Band set each method is defined on; "refuse" lists band sets that contradict the method.
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
        raise CliError(f"gan-rgb trains on the rgb bands, not {name!r}; use gan-ms for more bands")
    if method in ("gan-ms", "uahm", "dhnn-ms") and len(wanted) <= 3:
        raise CliError(
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


def run(args: argparse.Namespace) -> int:
    import torch

    from rsgui.archive import Archive
    from training.device import pick_device, seed_everything
    from training.ssm import ssm_for_archive
    from training.train_uahm import TrainingCancelled, preset_config, run_training

    method = args.method
    if getattr(args, "augment", None):
        raise CliError("--augment names a conditional GAN for deephash; not used by " + method)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        out = out.with_suffix(".safetensors")
    device = pick_device(args.device)
    seed_everything(args.seed)
    if device.type == "cpu":
        torch.set_num_threads(max(1, min(torch.get_num_threads(), 16)))

    archive = Archive.open(args.archive)
    if len(archive) < 2:
        raise CliError(
            f"{archive.root}: needs at least 2 readable tiles to train, has {len(archive)}"
        )
    bands = resolve_bands(method, args.bands, archive.band_names)
    h, w = archive.tile_shape
    if h != w:
        raise CliError(f"{archive.root}: tiles are {h}x{w}; training needs square tiles")
    variant = getattr(args, "variant", None) or (
        "thesis" if args.preset == "thesis" else "improved"
    )
    model_cfg, settings, ssm_cfg = preset_config(
        method, args.preset, len(archive), bits=args.bits, channels=len(bands),
        image_size=h, variant=variant,
    )  # fmt: skip
    settings.seed = args.seed
    settings.amp = bool(args.amp)
    if args.steps is not None:
        settings.steps = args.steps
    if args.batch_size is not None:
        settings.batch_size = args.batch_size
    if args.checkpoint_every is not None:
        settings.checkpoint_every = args.checkpoint_every

    # training and held-out tiles
    all_idx = np.arange(len(archive))
    labelled = bool(archive.classes) and (archive.labels >= 0).all()
    eval_idx = None
    train_idx = all_idx
    if labelled and len(archive) >= HOLDOUT_MIN_TILES:
        rng = np.random.default_rng(args.seed)
        eval_idx = np.sort(
            rng.choice(all_idx, size=min(HOLDOUT_MAX, len(all_idx) // 10), replace=False)
        )
        train_idx = np.setdiff1d(all_idx, eval_idx)
    elif labelled:
        eval_idx = all_idx  # small archive: the MAP shown is on the training tiles themselves

    with ProgressBar("reading") as bar:
        tiles = read_tiles(archive, train_idx, bands, bar)
    ssm = None
    if model_cfg.binary:
        ssm_cfg.spectral_bands = tuple(bands)
        with ProgressBar("similarity") as bar:
            ssm = ssm_for_archive(
                archive, train_idx, ssm_cfg, device, cache=out.with_suffix(".ssm.npz"),
                progress=bar,
            )  # fmt: skip
    eval_data = None
    if eval_idx is not None:
        eval_tiles = tiles if eval_idx is all_idx else read_tiles(archive, eval_idx, bands)
        eval_data = (eval_tiles, archive.labels[eval_idx])
        if not settings.eval_every:
            settings.eval_every = max(1, settings.steps // 5)

    meta = {
        "band_names": list(bands),
        "normalisation": archive.normalisation.to_dict(),
        "archive_root": str(archive.root),
        "n_train_tiles": int(len(train_idx)),
        "eval": "held-out sample"
        if eval_idx is not None and eval_idx is not all_idx
        else "training tiles",
        "preset": args.preset,
        "device": str(device),
        "ssm": {**ssm_cfg.to_dict(), **(ssm.info if ssm else {})} if ssm else {},
    }
    bar = ProgressBar(f"train {method}")

    def progress(p: dict) -> None:
        note = " ".join(f"{k} {v:.3f}" for k, v in p.get("losses", {}).items())
        if "map" in p:
            note += f" map@{settings.eval_k} {p['map']:.3f}"
        bar(p["step"], p["total"], f"{p.get('images_per_s', 0):.0f} img/s {note}")

    try:
        last = run_training(
            model_cfg, settings, tiles, ssm, out=out, meta=meta, device=device,
            eval_data=eval_data, resume=args.resume, progress=progress,
        )  # fmt: skip
    except TrainingCancelled as e:
        bar.close()
        print(f"{e}; the last checkpoint is kept", file=sys.stderr)
        return 130
    bar.close()
    n_gen = getattr(args, "n_generated", None)
    if n_gen and method != "dhnn-ms":
        from training.train_uahm import generate_tiles, load_networks, write_generated_geotiffs

        cfg, g, _, meta2 = load_networks(out, device="cpu")
        folder = out.with_name(out.stem + "_generated")
        write_generated_geotiffs(
            generate_tiles(g, n_gen, cfg.bits, args.seed), folder, bands, meta2["normalisation"]
        )
        print(f"{n_gen} generated tiles in {folder}")
    msg = f"{method}: {last['step']} steps, model {out}"
    if "map" in last:
        msg += f"; MAP@{settings.eval_k} {last['map']:.4f} ({meta['eval']})"
    print(msg)
    return 0
