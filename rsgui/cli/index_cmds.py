"""``rsgui-cli index | search | evaluate``: build an index, query it with files, measure it.

Each command is a call of a service (:mod:`rsgui.services.indexing`, :mod:`rsgui.services.search`,
:mod:`rsgui.services.evaluation`), the same the application makes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rsgui.encoders.registry import retrieval_methods


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "index",
        help="encode every tile of an archive into an index (spectral: fitted on the archive)",
        description="Encode every tile of ARCHIVE. The spectral method needs no model: it is "
        "fitted on the archive itself. Trained methods take --model; their band set and code "
        "length come from the model file.",
    )
    p.add_argument("archive", help="archive folder")
    p.add_argument(
        "--method", default=None, choices=retrieval_methods(), help="required unless --update"
    )
    p.add_argument("--model", default=None, help="trained model file (all methods but spectral)")
    p.add_argument(
        "--bands",
        default=None,
        help="band set: rgb | ms10 | all (spectral: ms10 when the tiles have them, else all)",
    )
    p.add_argument("--bits", type=int, default=None, help="code length (spectral: 64)")
    p.add_argument(
        "--out",
        required=True,
        help="index to write: OUT.npz + OUT.json (OUT.npz or OUT.json name the same pair); "
        "the files written are printed on stdout, one path a line",
    )
    p.add_argument(
        "--preset", default=None, help="archive layout: eurosat-ms | eurosat-rgb | geotiff"
    )
    p.add_argument("--batch-size", type=int, default=256, help="tiles read at a time")
    p.add_argument(
        "--max-fit-tiles", type=int, default=5000, help="spectral: tiles sampled to fit (5000)"
    )
    p.add_argument("--seed", type=int, default=0, help="spectral: sampling and rotation seed")
    p.add_argument(
        "--update",
        action="store_true",
        help="bring the existing index OUT up to date: encode only changed and new tiles with "
        "its own encoder, drop removed ones",
    )
    p.add_argument("--no-cache", action="store_true", help="re-read every header")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="encode on the Dask cluster at ADDRESS (tcp://host:8786) into the index folder OUT",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="encode on an embedded Dask cluster of N workers into the index folder OUT",
    )
    p.add_argument("--chunk-tiles", type=int, default=None, help="cluster: tiles per task (4096)")
    p.set_defaults(func=run_index)

    p = sub.add_parser(
        "search",
        help="find the archive tiles nearest to query files",
        description="Encode each QUERY file as the index's tiles were encoded and list its "
        "nearest archive tiles. A query that is a tile of the indexed archive is left out of its "
        "own results (as in evaluate); a copy kept elsewhere finds its twin at distance 0.",
    )
    p.add_argument("index", help="index file (INDEX, INDEX.npz or INDEX.json)")
    p.add_argument("queries", nargs="+", metavar="QUERY", help="tile files (GeoTIFF...)")
    p.add_argument("--top", type=int, default=10, help="results per query (10)")
    p.add_argument(
        "--format",
        choices=["csv", "json"],
        default=None,
        help="csv or json (default: from the --out suffix, else csv); a --out suffix that "
        "names the other format is refused",
    )
    p.add_argument(
        "--out",
        default=None,
        help="file to write, its path then printed on stdout (default: results on stdout)",
    )
    g = p.add_argument_group(
        "several examples",
        "With --combine the QUERY files are one search: the archive is ranked once for the set "
        "(the examples themselves are left out of the results).",
    )
    g.add_argument("--combine", action="store_true", help="rank once for all QUERY files")
    g.add_argument(
        "--rule", choices=["sum", "majority", "min"], default="sum",
        help="how the distances to the examples combine (sum)",
    )  # fmt: skip
    g.add_argument("--not", dest="negatives", nargs="+", default=[], metavar="NEG",
                   help="tiles not wanted: tiles like them move down")  # fmt: skip
    g.add_argument("--neg-weight", type=float, default=None, help="weight of --not (0.5)")
    g.add_argument("--refine", choices=["logreg", "svm"], default=None,
                   help="rank with a linear model fitted on the examples against --not")  # fmt: skip
    g.add_argument("--class", dest="classes", action="append", default=[], metavar="CLASS",
                   help="only tiles of this class (repeat for several)")  # fmt: skip
    g.add_argument("--bbox", default=None, metavar="W,S,E,N",
                   help="only tiles meeting this lon/lat box (opens the index's archive)")  # fmt: skip
    g.add_argument("--scene", action="append", default=[], help="only tiles of this scene")
    g.add_argument("--date", action="append", default=[], help="only tiles of this date")
    g.add_argument("--save-search", default=None, metavar="FILE",
                   help="also save the search (examples, filters, index) to this JSON file")  # fmt: skip
    p.set_defaults(func=run_search)

    p = sub.add_parser(
        "evaluate",
        help="retrieval quality of an index against its class labels (MAP@k, P@N, PR curve)",
        description="Each query (default: every tile) ranks all other tiles; relevant means "
        "same class folder.",
    )
    p.add_argument("index", help="index file")
    p.add_argument(
        "--queries", default=None, help="text file of archive tile paths, one a line (default: all)"
    )
    p.add_argument("--k", default="20,100", help="MAP cut-offs, comma separated (20,100)")
    p.add_argument("--n", default="10,20", help="precision cut-offs, comma separated (10,20)")
    p.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="N",
        help="evaluate N random labelled queries instead of every tile (large indexes)",
    )
    p.add_argument("--pr-csv", default=None, help="write precision-recall points to this CSV")
    p.add_argument(
        "--pr-step",
        type=int,
        default=None,
        help="results between PR points (500, less for small archives)",
    )
    p.set_defaults(func=run_evaluate)


EVAL_WARN_DISTANCES = 2e9  # above this an evaluation takes minutes: say so before starting


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{option} takes comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{option} takes positive whole numbers, got {text!r}")
    return values


def run_index(args: argparse.Namespace) -> int:
    """Build (or update) the index, then print every file written on stdout, one a line."""
    from rsgui.cli.outputs import Outputs

    written = Outputs.stem(args.out)
    rc = _run_index(args)
    if rc == 0:
        written.print()
    return rc


def _run_index(args: argparse.Namespace) -> int:
    from rsgui.archive import Archive
    from rsgui.cli.common import CliError
    from rsgui.cli.progress import ProgressBar, StageBars
    from rsgui.encoders.registry import method
    from rsgui.index_store import describe_bands
    from rsgui.progress import drive
    from rsgui.services.indexing import index_job

    if args.bits is not None and args.bits < 1:
        raise CliError(f"--bits must be at least 1, got {args.bits}")
    if args.scheduler or args.workers is not None:
        from rsgui.cli.scale_cmds import run_distributed_index

        return run_distributed_index(args)
    if args.update:
        return _run_update(args)
    if args.method is None:
        raise CliError("--method is required (or --update to refresh an existing index)")
    encoder = None
    if method(args.method).trained:
        if not args.model:
            raise CliError(f"method {args.method} needs --model (a file made by rsgui-cli train)")
        from rsgui.encoders import load_trained_encoder

        encoder = load_trained_encoder(args.model, args.method)  # its scaling opens the archive
    elif args.model:
        raise CliError("the spectral method is fitted on the archive; it takes no --model")
    norm = None if encoder is None else encoder.normalisation
    with ProgressBar("scan") as bar:
        archive = Archive.open(
            args.archive, preset=args.preset, normalisation=norm, progress=bar,
            use_cache=not args.no_cache,
        )  # fmt: skip
    job = index_job(
        archive, args.method, args.out, model=args.model, encoder=encoder, bands=args.bands,
        bits=args.bits, max_fit_tiles=args.max_fit_tiles, seed=args.seed,
        batch_size=args.batch_size,
    )  # fmt: skip
    with StageBars({"encode": "index"}) as bars:
        result = drive(job, bars)
    index = result.index
    print(
        f"indexed {len(index)} tiles of {archive.root} with {index.meta.method} "
        f"({describe_bands(index.meta.band_names)}, {index.meta.bits} bits) -> {result.path}",
        file=sys.stderr,
    )
    if archive.problems:
        print(
            f"note: {len(archive.problems)} file(s) skipped; `rsgui-cli archive-info "
            f"{args.archive}` lists them",
            file=sys.stderr,
        )
    return 0


def _run_update(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rsgui.archive import Archive
    from rsgui.bands import Normalisation
    from rsgui.cli.common import CliError
    from rsgui.cli.progress import ProgressBar, StageBars
    from rsgui.index_store import HashIndex, index_paths
    from rsgui.progress import drive
    from rsgui.services.index_update import update_index_job

    npz, js = index_paths(args.out)
    if not npz.is_file() or not js.is_file():
        raise CliError(f"{npz}: no index to update (build one without --update first)")
    index = HashIndex.load(npz)
    meta = index.meta
    if args.method is not None and args.method != meta.method:
        raise CliError(f"{npz}: an index made with {meta.method}, not {args.method}")
    if args.model or args.bits or args.bands:
        raise CliError("--update keeps the index's own encoder; leave --model, --bits, --bands out")
    if meta.archive_root and Path(args.archive).resolve() != Path(meta.archive_root).resolve():
        raise CliError(f"{npz}: an index of {meta.archive_root}, not of {args.archive}")
    norm = Normalisation.from_dict(meta.normalisation) if meta.normalisation else None
    with ProgressBar("scan") as bar:
        archive = Archive.open(
            args.archive, preset=args.preset, normalisation=norm, progress=bar,
            use_cache=not args.no_cache,
        )  # fmt: skip
    with StageBars({"encode": "update"}) as bars:
        result = drive(update_index_job(npz, archive, batch_size=args.batch_size), bars)
    c = result.changes
    print(
        f"updated {result.path}: {result.encoded} tile(s) encoded ({len(c.added)} new, "
        f"{len(c.changed)} changed), {result.removed} removed, {result.kept} kept; "
        f"{result.n_tiles} tiles",
        file=sys.stderr,
    )
    return 0


def warn_if_stale(index, index_path) -> None:
    """One line on standard error when the index's archive changed since it was built."""
    from rsgui.services.index_update import index_changes

    try:
        changes = index_changes(index, deep=True)
    except (OSError, ValueError) as e:
        print(f"warning: {index_path}: cannot check its archive ({e})", file=sys.stderr)
        return
    if changes.stale:
        root = index.meta.archive_root or "ARCHIVE"
        print(
            f"warning: {index_path}: {changes.summary()}; results may name missing or outdated "
            f"tiles (`rsgui-cli index {root} --out {index_path} --update` refreshes it)",
            file=sys.stderr,
        )
    elif not changes.checked and index.meta.archive_root:
        print(
            f"note: {index_path}: an older index without tile stats; changed tiles cannot be "
            "detected (rebuild it to add them)",
            file=sys.stderr,
        )


_FORMAT_OF_SUFFIX = {".csv": "csv", ".json": "json", ".geojson": "geojson"}


def _search_format(fmt: str | None, out: str | None) -> str:
    """The results format: ``--format``, else the ``--out`` suffix, else csv. A suffix that
    names another format than the one asked is refused (never a CSV named ``.json``)."""
    from pathlib import Path

    from rsgui.cli.common import CliError

    named = _FORMAT_OF_SUFFIX.get(Path(out).suffix.lower()) if out else None
    if fmt is None:
        if named == "geojson":
            raise CliError(
                f"--out {out}: the command line writes csv or json; GeoJSON is exported from "
                "the window"
            )
        return named or "csv"
    if named is not None and named != fmt:
        raise CliError(
            f"--out {out}: the suffix says {named} but --format is {fmt}; "
            f"use --out {Path(out).with_suffix('.' + fmt)} or leave --format out"
        )
    return fmt


def run_search(args: argparse.Namespace) -> int:
    from rsgui.cli.common import CliError
    from rsgui.cli.progress import StageBars
    from rsgui.index_store import HashIndex
    from rsgui.progress import drive
    from rsgui.services.search import check_export_target, search_job, write_results

    if args.top < 1:
        raise CliError(f"--top must be at least 1, got {args.top}")
    args.format = _search_format(args.format, args.out)
    from rsgui.shards import open_index

    set_options = (args.negatives or args.refine or args.classes or args.bbox or args.scene
                   or args.date or args.save_search or args.neg_weight is not None
                   or args.rule != "sum")  # fmt: skip
    if set_options and not args.combine:
        raise CliError("--not, --rule, --neg-weight, --refine, the filters and --save-search "
                       "need --combine (one search for all QUERY files)")  # fmt: skip
    index = open_index(args.index)  # an .npz index or a sharded index folder
    if args.out is not None:  # refuse before searching, not after
        check_export_target(args.out, args.index, index.meta.archive_root)
    if isinstance(index, HashIndex):
        warn_if_stale(index, args.index)
    if args.combine:
        if not isinstance(index, HashIndex):
            raise CliError(f"{args.index}: --combine searches a one-file index, not a sharded one")
        return _run_set_search(args, index)
    with StageBars() as bars:
        results = drive(search_job(index, args.queries, args.top), bars)
    text = write_results(
        results, args.format, args.out, index_path=args.index,
        archive_root=index.meta.archive_root,
    )  # fmt: skip
    if args.out is None:
        from rsgui.services.search import encode_text

        raw = getattr(sys.stdout, "buffer", None)
        if raw is None:
            sys.stdout.write(text)
        else:  # a file name that is not UTF-8 goes out as its own bytes
            sys.stdout.flush()
            raw.write(encode_text(text))
            raw.flush()
    else:
        n = sum(len(r.rows) for r in results)
        print(f"wrote {n} results for {len(args.queries)} queries to {args.out}", file=sys.stderr)
        print(args.out)  # stdout: the file written, as every command that writes files does
    return 0


def _run_set_search(args: argparse.Namespace, index) -> int:
    from rsgui.cli.common import CliError
    from rsgui.services import feedback as fb
    from rsgui.services.search import write_results

    try:
        bbox = fb.parse_bbox(args.bbox) if args.bbox else None
    except ValueError as e:
        raise CliError(f"--bbox: {e}") from None
    filters = fb.Filters(tuple(args.classes), bbox, tuple(args.scene), tuple(args.date))
    unknown = sorted(set(args.classes) - set(index.classes))
    if unknown:
        raise CliError(
            f"--class {unknown[0]}: not a class of the index ({', '.join(index.classes)})"
        )
    archive = None
    if bbox is not None:
        from rsgui.archive import Archive

        if not index.meta.archive_root:
            raise CliError("--bbox needs the index's archive, and the index names none")
        archive = Archive.open(index.meta.archive_root)
    weight = fb.DEFAULT_NEG_WEIGHT if args.neg_weight is None else args.neg_weight
    if weight < 0:
        raise CliError(f"--neg-weight must be at least 0, got {weight}")
    results = fb.search_set(
        index, args.queries, args.top, negatives=args.negatives, combine=args.rule,
        neg_weight=weight, refine=args.refine, filters=filters, archive=archive,
        index_path=args.index,
    )  # fmt: skip
    if args.save_search:
        fb.SavedSearch(
            index=str(Path(args.index).resolve()), archive=index.meta.archive_root,
            positives=[str(Path(q).resolve()) for q in args.queries],
            negatives=[str(Path(q).resolve()) for q in args.negatives], combine=args.rule,
            neg_weight=weight, refine=args.refine, filters=filters, k=args.top,
        ).save(args.save_search)  # fmt: skip
    text = write_results(
        results, args.format, args.out, archive=archive, index_path=args.index,
        archive_root=index.meta.archive_root,
    )  # fmt: skip
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"wrote {len(results.rows)} results for a set of {len(args.queries)} examples "
              f"to {args.out}", file=sys.stderr)  # fmt: skip
        print(args.out)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from rsgui.cli.progress import StageBars
    from rsgui.progress import drive
    from rsgui.services.evaluation import evaluate_job, read_query_list

    k = _int_list(args.k, "--k")
    n = _int_list(args.n, "--n")
    if args.pr_step is not None and args.pr_step < 1:
        raise ValueError(f"--pr-step must be at least 1, got {args.pr_step}")
    from rsgui.shards import ShardedIndex, open_index

    index = open_index(args.index)
    if isinstance(index, ShardedIndex):
        index = index.to_hash_index()
    else:
        warn_if_stale(index, args.index)
    if args.pr_csv:
        from rsgui.services.search import check_export_target

        check_export_target(args.pr_csv, args.index, index.meta.archive_root)
    queries = read_query_list(args.queries) if args.queries else None
    if args.sample is not None:
        if args.sample < 1:
            raise ValueError(f"--sample must be at least 1, got {args.sample}")
        if queries is not None:
            raise ValueError("--sample picks queries itself; leave --queries out")
        import numpy as np

        labelled = index.labelled_positions()  # a label, or a non-empty label set
        pick = np.random.default_rng(0).choice(labelled, min(args.sample, labelled.size), False)
        queries = sorted(int(i) for i in pick)
    n_q = len(index) if queries is None else len(queries)
    work = n_q * max(len(index) - 1, 1)
    if work > EVAL_WARN_DISTANCES:
        print(
            f"note: {args.index}: {n_q:,} queries each ranking {len(index) - 1:,} tiles "
            f"({work:.1e} distances and full rankings) will take long; --sample N evaluates N "
            "random queries instead",
            file=sys.stderr,
        )
    with StageBars() as bars:
        result = drive(evaluate_job(index, queries, k=k, n=n, pr_step=args.pr_step), bars)
    sys.stdout.write(result.to_markdown())
    if args.pr_csv:
        result.write_pr_csv(args.pr_csv)
        print(
            f"wrote {len(result.pr_cut)} precision-recall points to {args.pr_csv}", file=sys.stderr
        )
    return 0
