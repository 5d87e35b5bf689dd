"""``rsgui-cli generate``: synthesise labelled tiles with a trained conditional GAN."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="write GeoTIFF tiles of a class made by a conditional GAN (cdcgan/acgan model)",
    )
    p.add_argument("--model", required=True, help="conditional GAN checkpoint (.safetensors)")
    p.add_argument(
        "--class", dest="class_name", required=True, help="class name, or 'all' for every class"
    )
    p.add_argument("--n", type=int, required=True, help="tiles per class")
    p.add_argument(
        "--out",
        required=True,
        help="output folder; tiles go to OUT/CLASS/ (each file written is printed on stdout)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rsgui.cli import CliError
    from rsgui.cli.progress import ProgressBar
    from rsgui.errors import JobError
    from rsgui.progress import drive
    from rsgui.services.generation import generate_folder, read_model_info
    from rsgui.services.training import torch_device

    if args.n < 1:
        raise ValueError("--n must be at least 1")
    info = read_model_info(args.model)
    if args.class_name == "all" and "all" not in info.classes:
        names = None
    elif args.class_name not in info.classes:
        raise ValueError(
            f"unknown class {args.class_name!r}; the model knows: {', '.join(info.classes)}"
        )
    else:
        names = [args.class_name]
    try:
        device = str(torch_device(args.device))
    except JobError as e:
        raise CliError(str(e)) from None
    from rsgui.cli.outputs import Outputs

    written = Outputs.folder(args.out)
    with ProgressBar("generate") as bar:
        job = generate_folder(args.model, args.out, names, args.n, seed=args.seed, device=device)
        paths = drive(job, lambda p: bar(int(p.done), p.total and int(p.total), p.note))
    print(f"wrote {len(paths)} tiles to {args.out}", file=sys.stderr)
    written.print()  # stdout: every file written, one path a line
    return 0
