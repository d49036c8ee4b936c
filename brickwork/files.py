"""Writing files so that a crash never leaves half of one: write beside it, then rename."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def temp_path(path: Path, pid: int | None = None) -> Path:
    """The temporary file that process ``pid`` (default this one) writes ``path`` through.

    The name is fixed for a process (``.model.safetensors.1234.tmp``), so what a killed writer
    left half-written is found by its name and PID (a run directory records the PID of its
    writer), never by a pattern.
    """
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.tmp")


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The file gets the permissions a plain ``open`` would give it (``0666`` less the umask),
    whatever ``write`` did to it. A failure leaves ``path`` as it was and no temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
