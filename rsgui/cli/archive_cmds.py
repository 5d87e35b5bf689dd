"""``rsgui-cli archive-info``, ``rsgui-cli chip`` and ``rsgui-cli make-demo-archive``."""

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
    _scene_options(p)
    p.set_defaults(func=run_info)

    c = sub.add_parser(
        "chip", help="export one tile of an archive (a scene window) as a georeferenced GeoTIFF"
    )
    c.add_argument("archive", help="archive folder")
    c.add_argument("tile", metavar="INDEX_OR_RECORD_PATH",
                   help="tile position, or its record path (scene.tif#r000128c000064)")  # fmt: skip
    c.add_argument("--out", required=True, help="GeoTIFF to write")
    c.add_argument("--bands", default="all", help="band set (all, ms10, rgb) or B02,B03,...")
    _scene_options(c)
    c.set_defaults(func=run_chip)

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


def _scene_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tile-size", type=int, default=64, help="scene tile side in 10 m pixels")
    p.add_argument("--stride", type=int, default=None, help="scene tile step (default: size)")
    p.add_argument("--layout", choices=("tiles", "scenes", "patches"), default=None,
                   help="default: detect")  # fmt: skip


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
            tile_size=args.tile_size,
            stride=args.stride,
            layout=args.layout,
        )
    print(archive.report())
    return 0


def run_chip(args: argparse.Namespace) -> int:
    from rsgui.archive import Archive
    from rsgui.cli.progress import ProgressBar
    from rsgui.services.chips import export_chip, resolve_record

    with ProgressBar("reading headers") as bar:
        archive = Archive.open(args.archive, progress=bar, tile_size=args.tile_size,
                               stride=args.stride, layout=args.layout)  # fmt: skip
    i = resolve_record(archive, args.tile)
    bands = args.bands if "," not in args.bands else [b.strip() for b in args.bands.split(",")]
    out = export_chip(archive, i, args.out, bands)
    print(out)
    print(f"chip: {archive.records[i].path} -> {out}", file=sys.stderr)
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
