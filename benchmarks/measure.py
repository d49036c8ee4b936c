"""Timing and memory helpers shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(tools: Mapping[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Seconds of each of ``reps`` calls of every tool, the tools taking turns (each first in
    every other round) after one warm-up round that is not kept."""
    names = list(tools)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps + 1):
        for name in names if rep % 2 == 0 else names[::-1]:
            seconds = timed(tools[name])
            if rep:  # the first round warms up
                times[name].append(seconds)
    return times


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB: ``VmRSS`` (resident now), ``VmHWM`` (its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")
