"""``rsgui-cli train``: one command for every trainable method, dispatched by ``--method``."""

from __future__ import annotations

import argparse
import importlib

# method -> "module:function" taking the parsed arguments and returning an exit code.
TRAINERS: dict[str, str] = {
    "uahm": "rsgui.cli.train_uahm:run",
    "dhnn-ms": "rsgui.cli.train_uahm:run",
    "gan-rgb": "rsgui.cli.train_uahm:run",
    "gan-ms": "rsgui.cli.train_uahm:run",
    "cdcgan": "rsgui.cli.train_cgan:run",
    "acgan": "rsgui.cli.train_cgan:run",
    "deephash": "rsgui.cli.train_cgan:run",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a hashing model or a conditional GAN on an archive")
    p.add_argument("archive", help="archive folder")
    p.add_argument("--method", required=True, choices=sorted(TRAINERS))
    p.add_argument("--out", required=True, help="checkpoint file to write (.safetensors)")
    p.add_argument("--bits", type=int, default=64, help="code length (hashing methods)")
    p.add_argument("--bands", default=None, help="band set: rgb | ms10 | all (default per method)")
    p.add_argument("--steps", type=int, default=None, help="training steps (overrides the preset)")
    p.add_argument("--preset", choices=["quick", "thesis"], default="quick")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto")
    p.add_argument("--resume", default=None, help="checkpoint to resume from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    p.add_argument("--augment", default=None, help="deephash: conditional GAN checkpoint")
    p.add_argument("--n-generated", type=int, default=None, help="deephash: generated tiles")
    p.add_argument(
        "--variant",
        choices=["thesis", "improved"],
        default=None,
        help="uahm/dhnn-ms: the method's own losses and sampling, or the improved ones "
        "(default: improved with --preset quick, thesis with --preset thesis)",
    )
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    module_name, func_name = TRAINERS[args.method].split(":")
    return getattr(importlib.import_module(module_name), func_name)(args)
