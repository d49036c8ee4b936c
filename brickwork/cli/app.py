"""The ``brickwork`` command, once its modules are loaded: parses arguments, calls the library.

Each command family has its module (:mod:`~brickwork.cli.build`: build, bricks, models;
:mod:`~brickwork.cli.inspect`: summary, doctor; :mod:`~brickwork.cli.train`: train, evaluate,
predict; :mod:`~brickwork.cli.export`: export); :func:`main` alone turns what they raise into
an exit status. Bad input exits with status 2 and one line ``error: ...`` (plus a ``hint:`` line
when one is known), without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from brickwork._version import __version__
from brickwork.cli import EXIT_INTERRUPTED, build, data, export, inspect, train
from brickwork.cli.output import print_error, print_stop, warning_lines
from brickwork.cli.parser import Parser
from brickwork.errors import (
    EXIT_BAD_INPUT,
    BrickworkError,
    ConfigError,
    PeerError,
    RunInterruptedError,
    TrainingError,
)

RANK_0_SPEAKS = (ConfigError, PeerError, TrainingError)
"""Errors that, under torchrun, every rank meets alike (bad input, a non-finite loss) or that only
echo another rank's failure (:class:`PeerError`): rank 0 alone prints them. Any other error is a
rank's own (a lost peer, a file it could not read): each rank prints it, prefixed ``rank N:``."""


def build_parser() -> argparse.ArgumentParser:
    """The ``brickwork`` parser, with every command; each sets ``run``, the function to call."""
    parser = Parser(
        prog="brickwork",
        description="Build, inspect and train PyTorch models made of reusable bricks.",
    )
    parser.add_argument("--version", action="version", version=f"brickwork {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    for family in (build, inspect, train, data, export):
        family.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Every failure ends here, told once and mapped to its status: a brickwork error's own
    ``exit_status`` (2 for bad input, 1 for a run that failed on good input, 128 + signal for a
    run stopped by one), 2 for an ``OSError``, 130 for Ctrl-C, 0 when the reader of the output
    has gone (``brickwork bricks | head``). ``--debug`` shows the traceback instead, except for
    a stopped run, whose checkpoint is saved.

    Args:
        argv: the arguments, without the program name; default ``sys.argv[1:]``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with warning_lines():
            status: int = args.run(args)
    except BrokenPipeError:  # the reader has gone, nothing to say
        sys.stderr.close()
        return 0
    except RunInterruptedError as stop:  # Ctrl-C or SIGTERM in training: a checkpoint was saved
        print_stop(stop)
        return stop.exit_status
    except (KeyboardInterrupt, BrickworkError, OSError) as err:
        if args.debug:
            raise
        return _failed(err)
    return status


def _failed(err: KeyboardInterrupt | BrickworkError | OSError) -> int:
    """Tell the user why the command stopped; its exit status."""
    if isinstance(err, KeyboardInterrupt):  # outside a training loop, which saves and exits itself
        print_stop("interrupted")
        return EXIT_INTERRUPTED
    print_error(err, getattr(err, "hint", None), shared=isinstance(err, RANK_0_SPEAKS))
    return err.exit_status if isinstance(err, BrickworkError) else EXIT_BAD_INPUT
