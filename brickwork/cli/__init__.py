"""The ``brickwork`` command's entry point: light, so that Ctrl-C while PyTorch loads ends quietly.

Loading the command's modules imports PyTorch, which takes most of a second. A Ctrl-C then is
noted, not raised (an exception thrown inside an extension's import can abort the process or
leave a module half-loaded), and once the import is done the command ends with status 130 and
one line, like a Ctrl-C at any later moment (:mod:`brickwork.cli.app` handles those), never with
a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 128 + signal.SIGINT
"""Exit status after a Ctrl-C outside a training loop (which saves and exits itself)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see :func:`brickwork.cli.app.main`).

    Args:
        argv: the arguments, without the program name; default ``sys.argv[1:]``.
    """
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        from brickwork.cli import app
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        if os.environ.get("RANK", "0") == "0":  # under torchrun, every rank gets the Ctrl-C
            print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return app.main(argv)
