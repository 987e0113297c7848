"""Command-line entry point: ``<package> <group> <command> [options]``.

Every subpackage with a ``commands`` module is a command group: its ``register(subparsers)`` adds
its commands. A new group (e.g. another launcher beside ``aws/``) is a new subpackage with such a
module; nothing here changes, and a subpackage declined at generation time is simply not found.
Command modules import heavy libraries inside their handlers, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import VERBOSE_ENV_VAR
from .errors import USER_ERRORS


class CommandParser(argparse.ArgumentParser):
    """A command's parser: takes ``-v`` after the command too (``train -v``), as people type it.
    Nested commands' parsers are of the same class; SUPPRESS keeps a command's unset flag from
    hiding a ``-v`` given before the command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug messages"
        )


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
    subparsers = parser.add_subparsers(
        dest="group", metavar="COMMAND", required=True, parser_class=CommandParser
    )
    found = pkgutil.iter_modules([str(Path(__file__).parent)])
    for group in sorted(module.name for module in found if module.ispkg):
        name = f"{__package__}.{group}.commands"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(subparsers)
    return parser


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
