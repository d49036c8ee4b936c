"""Writing files so that a crash never leaves half of one: write beside it, then rename."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from brickwork.errors import ConfigError


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


def check_replace(path: Path, ours: Callable[[Path], bool], what: str, overwrite: bool) -> None:
    """Refuse to replace a file that brickwork did not write, unless told to.

    Args:
        path: the file about to be written.
        ours: whether an existing file is one of the kind brickwork writes there (it reads the
            file's own marks: a spec's keys, an export's metadata).
        what: the kind of file, for the message (``"spec"``, ``"pt2 export"``).
        overwrite: replace whatever is there.

    Raises:
        ConfigError: ``path`` is a directory, or a file that is not a brickwork ``what``.
    """
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a file to write the {what} to")
    if overwrite or not path.exists():
        return
    if not ours(path):
        raise ConfigError(
            f"{path} exists and is not a brickwork {what}: it was not replaced",
            hint="pass --overwrite (overwrite=True) to replace it, or write elsewhere",
        )
