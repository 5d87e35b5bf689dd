"""``rsgui-cli archive-info`` and ``rsgui-cli make-demo-archive``."""

from __future__ import annotations

import argparse
import sys

from rsgui.bands import PRESETS, Normalisation


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "archive-info",
        help="scan an archive folder: tiles per class, bands, tile size, CRSs, problems",
    )
    p.add_argument("archive", help="archive folder")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="default: detect")
    p.add_argument(
        "--bands-order",
        default=None,
        metavar="B01,B02,...",
        help="band order of files without band descriptions",
    )
    p.add_argument("--divisor", type=float, default=None, help="normalisation divisor")
    p.add_argument("--clip", type=float, default=None, help="clip values above this first")
    p.add_argument("--no-cache", action="store_true", help="re-read every header")
    p.set_defaults(func=run_info)

    d = sub.add_parser(
        "make-demo-archive", help="write a small synthetic 10-class archive (EuroSAT MS layout)"
    )
    d.add_argument(
        "dir",
        help="folder to create (reused when made with the same settings); each file written "
        "is printed on stdout",
    )
    d.add_argument("--per-class", type=int, default=20, help="tiles per class")
    d.add_argument("--size", type=int, default=64, help="tile side in pixels")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=run_demo)


def _normalisation(args: argparse.Namespace) -> Normalisation | None:
    if args.divisor is None and args.clip is None:
        return None
    base = PRESETS[args.preset].normalisation if args.preset else Normalisation()
    divisor = args.divisor if args.divisor is not None else base.divisor
    clip = args.clip if args.clip is not None else (divisor if args.divisor else base.clip)
    if divisor <= 0:
        raise ValueError("--divisor must be positive")
    return Normalisation(clip=clip, divisor=divisor)


def run_info(args: argparse.Namespace) -> int:
    from rsgui.archive import Archive
    from rsgui.cli.progress import ProgressBar

    with ProgressBar("reading headers") as bar:
        archive = Archive.open(
            args.archive,
            preset=args.preset,
            band_names=args.bands_order,
            normalisation=_normalisation(args),
            progress=bar,
            use_cache=not args.no_cache,
        )
    print(archive.report())
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from rsgui.demo import make_demo_archive

    if args.per_class < 1 or args.size < 8:
        raise ValueError("--per-class must be >= 1 and --size >= 8")
    from rsgui.cli.outputs import Outputs

    written = Outputs.folder(args.dir)
    root = make_demo_archive(args.dir, n_per_class=args.per_class, size=args.size, seed=args.seed)
    paths = written.print()  # stdout: every file written, one path a line
    made = "made" if paths else "already there, reused"
    print(f"demo archive: {root} ({10 * args.per_class} tiles, {made})", file=sys.stderr)
    return 0
