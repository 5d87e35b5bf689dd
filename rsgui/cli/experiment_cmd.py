"""``rsgui-cli experiment NAME ARCHIVE --out DIR``: the method's experimental protocols."""

from __future__ import annotations

import argparse
import importlib

# command name -> "module:function"; ch4: conditional GANs + supervised deep hashing,
# ch5: unsupervised adversarial hashing
EXPERIMENTS: dict[str, str] = {
    "thesis-ch4": "rsgui.experiments.supervised_gan_augmented:run",
    "thesis-ch5": "rsgui.experiments.unsupervised_adversarial:run",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run one of the method's experimental protocols")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("archive", help="labelled archive folder")
    p.add_argument("--out", required=True, help="output folder for tables, plots and report")
    p.add_argument("--preset", choices=["quick", "thesis"], default="quick")
    p.add_argument("--steps", type=int, default=None, help="override training steps per model")
    p.add_argument(
        "--bits", default=None, help="comma-separated code lengths (default per protocol)"
    )
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    module_name, func_name = EXPERIMENTS[args.name].split(":")
    return getattr(importlib.import_module(module_name), func_name)(args)
