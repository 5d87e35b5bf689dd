"""``rsgui-cli index-convert`` and ``rsgui-cli index --scheduler ADDRESS | --workers N``: indexes
beyond one file, made on a Dask cluster (:mod:`rsgui.services.distributed`) as sharded index
folders (:mod:`rsgui.shards`)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index-convert",
        help="rewrite an index (OLD.npz + OLD.json) as a sharded index folder",
        description="Rewrite the index OLD as the folder NEW: memory-mapped codes per shard, tile "
        "records in Parquet, one manifest. NEW opens in milliseconds at any size; search, "
        "evaluate and the application read both kinds.",
    )
    p.add_argument("old", help="index to read (OLD, OLD.npz or OLD.json, or an index folder)")
    p.add_argument("new", help="index folder to write")
    p.add_argument("--shard-rows", type=int, default=None, help="codes per shard (16,777,216)")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rsgui.cli.common import CliError
    from rsgui.shards import DEFAULT_SHARD_ROWS, ShardedIndex, convert

    rows = args.shard_rows or DEFAULT_SHARD_ROWS
    if rows < 1:
        raise CliError(f"--shard-rows must be at least 1, got {rows}")
    if Path(args.new).exists() and not (
        Path(args.new).is_dir() and not any(Path(args.new).iterdir())
    ):
        raise CliError(f"{args.new}: already exists; choose a new folder")
    folder = convert(args.old, args.new, rows)
    index = ShardedIndex.open(folder)
    print(f"converted {args.old} -> {folder}: {len(index)} codes in {len(index.shards)} shard(s)")
    return 0


def run_distributed_index(args: argparse.Namespace) -> int:
    """``rsgui-cli index ... --scheduler ADDRESS`` or ``--workers N``."""
    from rsgui.archive import Archive
    from rsgui.cli.common import CliError
    from rsgui.cli.progress import ProgressBar, StageBars
    from rsgui.encoders.registry import method
    from rsgui.index_store import describe_bands
    from rsgui.progress import drive
    from rsgui.services.distributed import distributed_index_job

    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be at least 1, got {args.workers}")
    if args.scheduler and args.workers:
        raise CliError("--scheduler names an existing cluster; --workers starts one: give one")
    if args.method is None:
        raise CliError("--method is required (an index folder is updated by indexing it again)")
    norm = None
    if method(args.method).trained:
        if not args.model:
            raise CliError(f"method {args.method} needs --model (a file made by rsgui-cli train)")
        from rsgui.encoders import load_trained_encoder

        norm = load_trained_encoder(args.model, args.method).normalisation
    elif args.model:
        raise CliError("the spectral method is fitted on the archive; it takes no --model")
    with ProgressBar("scan") as bar:
        archive = Archive.open(
            args.archive, preset=args.preset, normalisation=norm, progress=bar,
            use_cache=not getattr(args, "no_cache", False),
        )  # fmt: skip
    job = distributed_index_job(
        archive, args.method, args.out, model=args.model, bands=args.bands, bits=args.bits,
        max_fit_tiles=args.max_fit_tiles, seed=args.seed, batch_size=args.batch_size,
        scheduler=args.scheduler, n_workers=args.workers, chunk_tiles=args.chunk_tiles,
    )  # fmt: skip
    with StageBars({"encode": "encode", "write": "write"}) as bars:
        result = drive(job, _with_rate(bars))
    meta = result.index.meta
    print(
        f"indexed {result.n_tiles} tiles of {archive.root} with {meta.method} "
        f"({describe_bands(meta.band_names)}, {meta.bits} bits) on {result.workers} worker(s): "
        f"{result.encoded} encoded, {result.reused} kept, {result.removed} removed, "
        f"{result.elapsed_s:.1f} s -> {result.path}"
    )
    if archive.problems:
        print(f"note: {len(archive.problems)} file(s) skipped; `rsgui-cli archive-info "
              f"{args.archive}` lists them", file=sys.stderr)  # fmt: skip
    return 0


def _with_rate(bars):
    """Progress reports with tiles/s and workers in the bar's note."""
    from dataclasses import replace

    def show(p):
        if p.rate:
            w = int(p.values.get("workers", 0))
            p = replace(p, note=f"{p.rate:,.0f} tiles/s, {w} worker(s)")
        bars(p)

    return show
