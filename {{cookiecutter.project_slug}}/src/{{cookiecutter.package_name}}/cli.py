"""Command-line entry point: ``<package> <group> <command> [options]``.

Each command group lives in its own ``commands`` module exposing ``register(subparsers)``; groups
are imported on demand so ``--help`` stays fast and optional extras (SageMaker) stay optional.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import VERBOSE_ENV_VAR
from .errors import USER_ERRORS

# Modules whose ``register`` adds subcommands; a missing module (e.g. SageMaker parts declined
# at generation time) is simply skipped.
COMMAND_MODULES = ("data.commands", "training.commands", "serving.commands", "aws.commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=__package__,
        description="Prepare data, train, evaluate and serve this project's text classifier.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        help="configuration file (default: the project's config.toml, found from any folder in it)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        full_name = f"{__package__}.{name}"
        if importlib.util.find_spec(full_name.rsplit(".", 1)[0]) is None:
            continue
        if importlib.util.find_spec(full_name) is None:
            continue
        importlib.import_module(full_name).register(subparsers)
    _accept_verbose_anywhere(parser)
    return parser


def _accept_verbose_anywhere(parser: argparse.ArgumentParser) -> None:
    """``-v`` also after the command (``train -v``), as people type it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if "-v" not in child._option_string_actions:
                    child.add_argument(
                        "-v",
                        "--verbose",
                        action="store_true",
                        default=argparse.SUPPRESS,
                        help="log debug messages",
                    )
                _accept_verbose_anywhere(child)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ[VERBOSE_ENV_VAR] = "1"
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.handler(args) or 0)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
