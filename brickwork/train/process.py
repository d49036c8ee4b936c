"""What a run changes in its process while it trains, and puts back afterwards: SIGINT and
SIGTERM become a flag, and denormal floats are flushed to zero."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import torch


@contextmanager
def catch_signals() -> Iterator[list[int]]:
    """Turn SIGINT and SIGTERM into a flag that the loop checks after each step.

    Yields:
        The list of signals caught so far (empty until one comes).
    """
    caught: list[int] = []
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        caught.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with suppress(ValueError):  # not the main thread: signals stay as they are
            previous[signum] = signal.signal(signum, handler)
    try:
        yield caught
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats (below 1.2e-38) as zero on the CPU while training.

    Adam's second moments of tiny gradients drift into that range, where x86 arithmetic is tens
    of times slower: steps that took 0.3 s took 1.5 s a few dozen steps into a run. PyTorch has
    no getter for the flag; it is off by default, and is turned off again afterwards.
    """
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)
