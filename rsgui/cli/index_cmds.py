"""``rsgui-cli index | search | evaluate``: build an index, query it with files, measure it.

Each command is a call of a service (:mod:`rsgui.services.indexing`, :mod:`rsgui.services.search`,
:mod:`rsgui.services.evaluation`), the same the application makes.
"""

from __future__ import annotations

import argparse
import sys

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
    p.add_argument("--method", required=True, choices=retrieval_methods())
    p.add_argument("--model", default=None, help="trained model file (all methods but spectral)")
    p.add_argument(
        "--bands",
        default=None,
        help="band set: rgb | ms10 | all (spectral: ms10 when the tiles have them, else all)",
    )
    p.add_argument("--bits", type=int, default=None, help="code length (spectral: 64)")
    p.add_argument("--out", required=True, help="index to write: OUT.npz + OUT.json")
    p.add_argument(
        "--preset", default=None, help="archive layout: eurosat-ms | eurosat-rgb | geotiff"
    )
    p.add_argument("--batch-size", type=int, default=256, help="tiles read at a time")
    p.add_argument(
        "--max-fit-tiles", type=int, default=5000, help="spectral: tiles sampled to fit (5000)"
    )
    p.add_argument("--seed", type=int, default=0, help="spectral: sampling and rotation seed")
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
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--out", default=None, help="file to write (default: standard output)")
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
    p.add_argument("--pr-csv", default=None, help="write precision-recall points to this CSV")
    p.add_argument(
        "--pr-step",
        type=int,
        default=None,
        help="results between PR points (500, less for small archives)",
    )
    p.set_defaults(func=run_evaluate)


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{option} takes comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{option} takes positive whole numbers, got {text!r}")
    return values


def run_index(args: argparse.Namespace) -> int:
    from rsgui.archive import Archive
    from rsgui.cli.common import CliError
    from rsgui.cli.progress import ProgressBar, StageBars
    from rsgui.encoders.registry import method
    from rsgui.index_store import describe_bands
    from rsgui.progress import drive
    from rsgui.services.indexing import index_job

    if args.bits is not None and args.bits < 1:
        raise CliError(f"--bits must be at least 1, got {args.bits}")
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
        archive = Archive.open(args.archive, preset=args.preset, normalisation=norm, progress=bar)
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
        f"({describe_bands(index.meta.band_names)}, {index.meta.bits} bits) -> {result.path}"
    )
    if archive.problems:
        print(
            f"note: {len(archive.problems)} file(s) skipped; `rsgui-cli archive-info "
            f"{args.archive}` lists them",
            file=sys.stderr,
        )
    return 0


def run_search(args: argparse.Namespace) -> int:
    from rsgui.cli.common import CliError
    from rsgui.cli.progress import StageBars
    from rsgui.index_store import HashIndex
    from rsgui.progress import drive
    from rsgui.services.search import search_job, write_results

    if args.top < 1:
        raise CliError(f"--top must be at least 1, got {args.top}")
    index = HashIndex.load(args.index)
    with StageBars() as bars:
        results = drive(search_job(index, args.queries, args.top), bars)
    text = write_results(results, args.format, args.out)
    if args.out is None:
        sys.stdout.write(text)
    else:
        n = sum(len(r.rows) for r in results)
        print(f"wrote {n} results for {len(args.queries)} queries to {args.out}", file=sys.stderr)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from rsgui.cli.progress import StageBars
    from rsgui.index_store import HashIndex
    from rsgui.progress import drive
    from rsgui.services.evaluation import evaluate_job, read_query_list

    k = _int_list(args.k, "--k")
    n = _int_list(args.n, "--n")
    if args.pr_step is not None and args.pr_step < 1:
        raise ValueError(f"--pr-step must be at least 1, got {args.pr_step}")
    index = HashIndex.load(args.index)
    queries = read_query_list(args.queries) if args.queries else None
    with StageBars() as bars:
        result = drive(evaluate_job(index, queries, k=k, n=n, pr_step=args.pr_step), bars)
    sys.stdout.write(result.to_markdown())
    if args.pr_csv:
        result.write_pr_csv(args.pr_csv)
        print(
            f"wrote {len(result.pr_cut)} precision-recall points to {args.pr_csv}", file=sys.stderr
        )
    return 0
