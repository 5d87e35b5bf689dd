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
    p.add_argument("--out", required=True, help="output folder; tiles go to OUT/CLASS/")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rsgui.cli.progress import ProgressBar
    from training.device import pick_device
    from training.generate import generate_folder, load

    if args.n < 1:
        raise ValueError("--n must be at least 1")
    gen = load(args.model, device=str(pick_device(args.device)))
    if args.class_name == "all" and "all" not in gen.classes:
        names = None
    else:
        gen.class_index(args.class_name)  # unknown class -> error listing the classes
        names = [args.class_name]
    with ProgressBar("generate") as bar:
        paths = generate_folder(gen, args.out, names, args.n, seed=args.seed, progress=bar)
    print(f"wrote {len(paths)} tiles to {args.out}", file=sys.stderr)
    return 0
