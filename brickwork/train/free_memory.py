"""How much memory a device has free now: the one place that asks the machine."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from brickwork.errors import BrickworkError

MEMINFO = Path("/proc/meminfo")


def available_memory(device: torch.device) -> int | None:
    """The bytes ``device`` has free now: MemAvailable on the CPU (or the free pages where
    there is no ``/proc/meminfo``), ``mem_get_info`` on a GPU; ``None``: unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(size: int, what: str, error: type[BrickworkError], hint: str) -> None:
    """Refuse, before it is made, something of ``size`` bytes that the CPU's free memory cannot
    hold (nothing is refused where the free memory is unknown).

    Raises:
        error: naming ``what``, its size and the memory free, with ``hint``.
    """
    free = available_memory(torch.device("cpu"))
    if free is not None and size > free:
        raise error(
            f"{what}: {size / 1e9:.3g} GB in memory, more than the {free / 1e9:.3g} GB free",
            hint=hint,
        )
