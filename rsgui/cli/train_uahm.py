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

from rsgui.cli import CliError
from rsgui.cli.progress import ProgressBar


def run(args: argparse.Namespace) -> int:
    import torch

    from rsgui.archive import Archive
    from training.device import pick_device, seed_everything
    from training.ssm import ssm_for_archive
    from training.train_uahm import TrainingCancelled, run_training
    from training.uahm_plan import checkpoint_meta, plan_run, read_tiles

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
    plan = plan_run(
        archive, method, args.bands, args.bits, args.preset, args.seed,
        variant=getattr(args, "variant", None), steps=args.steps, batch_size=args.batch_size,
        checkpoint_every=args.checkpoint_every, amp=args.amp,
    )  # fmt: skip
    bands, model_cfg, settings = plan.bands, plan.model_cfg, plan.settings

    with ProgressBar("reading") as bar:
        tiles = read_tiles(archive, plan.train_idx, bands, bar)
    ssm = None
    if model_cfg.binary:
        with ProgressBar("similarity") as bar:
            ssm = ssm_for_archive(
                archive, plan.train_idx, plan.ssm_cfg, device,
                cache=out.with_suffix(".ssm.npz"), progress=bar,
            )  # fmt: skip
    eval_data = None
    if plan.eval_idx is not None:
        eval_tiles = (
            tiles if plan.eval_on_training_tiles else read_tiles(archive, plan.eval_idx, bands)
        )
        eval_data = (eval_tiles, archive.labels[plan.eval_idx])
    meta = checkpoint_meta(plan, archive, args.preset, device, ssm)
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
