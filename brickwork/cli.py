"""The ``brickwork`` command. Thin: parses arguments and calls the library.

Bad input exits with status 2 and one line ``error: ...`` (plus a ``hint:`` line when one is
known), without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import brickwork
from brickwork.errors import BrickworkError

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brickwork",
        description="Build, inspect and train PyTorch models made of reusable bricks.",
    )
    parser.add_argument("--version", action="version", version=f"brickwork {brickwork.__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        status: int = args.run(args)
        return status
    except (BrickworkError, OSError) as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        hint = getattr(err, "hint", None)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return EXIT_BAD_INPUT
