"""What the command says on stderr when it fails or stops: the one place those lines are printed.

Under torchrun every rank runs the command. A rank's own failure is printed by that rank, each
line prefixed ``rank N:`` (none on rank 0); a failure or a stop that every rank meets alike is
printed once, by rank 0.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from brickwork.errors import BrickworkWarning
from brickwork.train import distributed


def print_error(message: object, hint: str | None = None, *, shared: bool = False) -> None:
    """Print ``error: <message>``, and ``hint: <hint>`` when a fix is known, on stderr.

    Args:
        message: what went wrong, on one line.
        hint: how to fix it, or ``None``.
        shared: every rank meets this error alike (bad input, a non-finite loss), so under
            torchrun rank 0 alone prints it.
    """
    rank = distributed.launch_rank()
    if shared and rank:
        return
    prefix = f"rank {rank}: " if rank else ""
    print(f"{prefix}error: {message}", file=sys.stderr)
    if hint:
        print(f"{prefix}hint: {hint}", file=sys.stderr)


def print_stop(message: object) -> None:
    """Print why the command stopped (Ctrl-C, SIGTERM) on stderr, as it is: not an error.

    Under torchrun every rank receives the signal; rank 0 alone prints it.

    Args:
        message: the line to print.
    """
    if distributed.launch_rank() == 0:
        print(message, file=sys.stderr)


@contextmanager
def warning_lines() -> Iterator[None]:
    """Show brickwork's own warnings (an unread branch of a graph spec, say) as ``warning: ...``
    lines on stderr, as errors are shown, instead of Python's ``file:line: Category:`` form."""
    previous = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, BrickworkWarning):
            if distributed.launch_rank() == 0:
                print(f"warning: {message}", file=sys.stderr)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
