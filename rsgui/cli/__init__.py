"""``rsgui-cli``: the headless command line. Each command lives in its own module and calls the
services (:mod:`rsgui.services`); this module only builds the parser and reports errors."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rsgui import __version__
from rsgui.cli.common import CliError
from rsgui.errors import RsguiError

# command name -> module under rsgui.cli that defines ``add_parser(subparsers)``; the parser's
# ``func`` default receives the parsed arguments and returns an exit code.
COMMAND_MODULES: tuple[str, ...] = (
    "archive_cmds",  # archive-info, chip, make-demo-archive
    "index_cmds",  # index, search, evaluate
    "scale_cmds",  # index-convert (and index --scheduler / --workers)
    "train_cmd",  # train
    "generate_cmd",  # generate
    "experiment_cmd",  # experiment thesis-ch4 | thesis-ch5
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rsgui-cli",
        description="Search multispectral tile archives by content with learned binary codes.",
    )
    parser.add_argument("--version", action="version", version=f"rsgui {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"rsgui.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"rsgui.cli.{name}":
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("rsgui-cli: interrupted", file=sys.stderr)
        return 130
    except (CliError, RsguiError, OSError, ValueError) as e:
        if args.verbose:
            raise
        print(f"rsgui-cli: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
