"""``rsgui-cli experiment NAME ARCHIVE --out DIR``: the method's experimental protocols."""

from __future__ import annotations

import argparse
import importlib

# command name -> "module:function"; ch4: conditional GANs + supervised deep hashing,
# ch5: unsupervised adversarial hashing
EXPERIMENTS: dict[str, str] = {
    "thesis-ch4": "rsgui.experiments.supervised_gan_augmented:run",
    "thesis-ch5": "rsgui.experiments.unsupervised_adversarial:run",
    "feedback": "rsgui.experiments.feedback:run",  # a simulated analyst refining searches
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run one of the method's experimental protocols")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("archive", help="labelled archive folder")
    p.add_argument(
        "--out",
        required=True,
        help="output folder for tables, plots and report (each file written is printed on stdout)",
    )
    p.add_argument("--preset", choices=["quick", "cpu", "thesis"], default="quick")
    p.add_argument("--steps", type=int, default=None, help="override training steps per model")
    p.add_argument(
        "--bits", default=None, help="comma-separated code lengths (default per protocol)"
    )
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--index", default=None, help="feedback: the index to search (else built)")
    p.add_argument(
        "--bands",
        default=None,
        help="feedback: band set of the index it builds; thesis-ch5: ms10 or rgb (default: ms10 when the archive has it)",
    )
    p.add_argument(
        "--queries-per-class", type=int, default=None, help="feedback: queries per class (100)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rsgui.cli.outputs import Outputs

    module_name, func_name = EXPERIMENTS[args.name].split(":")
    written = Outputs.folder(args.out)
    rc = getattr(importlib.import_module(module_name), func_name)(args)
    written.print()  # stdout: every file written (tables, figures, report), one path a line
    return rc
