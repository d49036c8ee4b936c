"""A run directory: whose it is, who writes in it now, and which of its files are brickwork's.

A directory is a brickwork run when its ``config.json`` carries the ``brickwork`` marker key.
brickwork starts a run only in a new or empty directory (or, with ``force``, over a run of its
own), never in a directory of someone else's files; which files of a run it may delete is
:mod:`brickwork.train.owned`'s job. A pointer names only regular files of its own directory.

While a run is written, an advisory ``fcntl`` lock on ``.brickwork.lock`` (holding the writer's
PID) keeps a second writer out. The operating system drops the lock when the process ends, even
on ``kill -9``, so a lock file left behind by a dead run is simply taken over; the PID it holds
names that run's temporary files (see :func:`brickwork.files.temp_path`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from brickwork.errors import CheckpointError, ConfigError

MARKER = "brickwork"
"""The key of ``config.json`` that makes a directory a brickwork run."""
CONFIG = "config.json"
POINTER = "checkpoint.json"
MODEL_ORIGIN = "model.json"
"""A code-built run's model: the ``file.py:NAME`` call it came from (a spec run has spec.yaml)."""
LOCK = ".brickwork.lock"
RECORD = ".brickwork-files.json"
"""The record of the names a run wrote (see :mod:`brickwork.train.owned`)."""
RUN_FILES = (
    CONFIG,
    "spec.yaml",
    MODEL_ORIGIN,
    "metrics.jsonl",
    "model.safetensors",
    "curves.png",
    "confusion.png",
    "samples.png",
    POINTER,
)
"""The names every run may write (besides its checkpoint pairs and TensorBoard event files)."""
BOARD = "tensorboard"
"""The folder of the TensorBoard event files a run may write."""
_PAIR = re.compile(r"checkpoint-([1-9][0-9]*)(-state)?\.safetensors")


def pair_names(n: int) -> tuple[str, str]:
    """The two files of checkpoint ``n``: weights and training state."""
    return f"checkpoint-{n}.safetensors", f"checkpoint-{n}-state.safetensors"


def is_run(folder: Path) -> bool:
    """Whether ``folder`` holds a brickwork run (its ``config.json`` has the marker key)."""
    return run_config(folder) is not None


def run_config(folder: Path) -> dict[str, Any] | None:
    """The ``config.json`` of the brickwork run in ``folder``; ``None`` where there is none (no
    file, a damaged one, or one without the marker key)."""
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) and MARKER in config else None


def check_new_run(folder: Path, *, force: bool = False) -> None:
    """Refuse to start a run in ``folder`` unless it is new, empty, or (with ``force``) a run.

    Raises:
        ConfigError: ``folder`` is the file system's root, a file, a dangling link, a directory
            of files brickwork did not write, or a run (without ``force``).
    """
    check_not_foreign(folder)
    if is_run(folder) and not force:
        raise ConfigError(
            f"{folder} already holds a run; add --resume to continue it, or --force to start "
            "it over (only brickwork's files are deleted)",
            hint="or choose another --out",
        )


def check_not_foreign(folder: Path) -> None:
    """Refuse a place for a run that is not a directory, or a directory of someone else's files.

    Raises:
        ConfigError: the root, a file, a dangling link, or a non-empty directory without
            brickwork's marker (nothing in it is touched).
    """
    check_place(folder)
    if not folder.exists() or is_run(folder):
        return
    others = sorted(p.name for p in folder.iterdir() if p.name != LOCK)
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise ConfigError(
            f"{folder} is not empty and is not a brickwork run ({shown}): brickwork writes runs "
            "only into new or empty directories",
            hint="choose a new --out directory (it is created)",
        )


def check_place(folder: Path) -> None:
    """Refuse a run directory that is the root, a file or a dangling symbolic link."""
    if folder.is_symlink() and not folder.exists():
        raise ConfigError(f"{folder} is a symbolic link to nothing ({os.readlink(folder)})")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a directory", hint="choose another --out")
    if folder.resolve() == Path(folder.resolve().anchor):
        raise ConfigError(
            f"{folder} is the root of the file system; choose a directory for the run"
        )


def has_started(folder: Path) -> bool:
    """Whether the run in ``folder`` has written its first files (``config.json`` with the marker,
    then ``spec.yaml`` or, for a code-built model, ``model.json``): a run killed before has
    nothing to resume and starts again."""
    return is_run(folder) and any((folder / n).is_file() for n in ("spec.yaml", MODEL_ORIGIN))


def is_unstarted(folder: Path) -> bool:
    """Whether ``folder`` is a run of brickwork's stopped before its first files: it holds only
    the lock, or a ``config.json`` with the marker (and its record) and no ``spec.yaml``."""
    if not folder.is_dir() or has_started(folder):
        return False
    names = {p.name for p in folder.iterdir()} - {LOCK}
    return not names or (is_run(folder) and names <= {CONFIG, RECORD})


def check_resume(folder: Path) -> None:
    """Refuse to resume in a directory that holds no brickwork run, saying what it found.

    Raises:
        ConfigError: no such directory or no ``config.json`` in it, a damaged one, or one
            without brickwork's marker.
    """
    check_place(folder)
    if is_unstarted(folder):
        return
    config = folder / CONFIG
    hint = "start the run without --resume, or give the --out of an earlier run"
    if not config.is_file():
        raise ConfigError(
            f"{folder}: no config.json, so there is no run to resume there", hint=hint
        )
    try:
        content = json.loads(config.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{config}: damaged ({err}); cannot resume from it") from err
    if not isinstance(content, dict) or MARKER not in content:
        raise ConfigError(
            f"{config} is not a brickwork run's (it has no {MARKER!r} key), so there is no run "
            "to resume there",
            hint=hint,
        )


def read_pointer(folder: Path) -> int | None:
    """The number of the checkpoint pair ``checkpoint.json`` names, or ``None`` without one.

    Raises:
        CheckpointError: a damaged pointer, or one that names anything but a checkpoint pair of
            this directory (``../other-run/checkpoint-1.safetensors``): nothing is read then.
    """
    pointer = folder / POINTER
    if not pointer.is_file():
        return None
    try:
        data = json.loads(pointer.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{pointer}: damaged ({err})") from err
    n = data.get("n") if isinstance(data, dict) else None
    if type(n) is not int or n < 1:
        raise CheckpointError(f"{pointer}: damaged (no checkpoint number)")
    expected = dict(zip(("weights", "state"), pair_names(n), strict=True))
    for key, name in expected.items():
        if data.get(key) != name:
            raise CheckpointError(
                f"{pointer}: names {data.get(key)!r} as the {key}, not {name!r}: a pointer names "
                "only checkpoint files of its own run directory; nothing was read or deleted",
                hint="the run directory was edited or mixed with another one",
            )
        check_inside(folder, folder / name)
    return n


def check_inside(folder: Path, path: Path) -> None:
    """Refuse a file of a run that is not a regular file inside ``folder``: a symbolic link to
    another run's checkpoint, say (brickwork never writes links). A missing file passes.

    Raises:
        CheckpointError: ``path`` leads outside ``folder``, or is not a regular file.
    """
    if not path.is_symlink() and not path.exists():
        return
    target = path.resolve()
    if target.parent != folder.resolve():
        raise CheckpointError(
            f"{path} is a link to {target}, outside the run directory: a run reads only its own "
            "files; nothing was read or deleted",
            hint="put a copy of the file in its place, or resume the run it belongs to",
        )
    if not target.is_file():
        raise CheckpointError(f"{path} is not a regular file; nothing was read or deleted")


def pointer_content(n: int) -> dict[str, Any]:
    """What ``checkpoint.json`` holds when it names checkpoint pair ``n``."""
    weights, state = pair_names(n)
    return {"n": n, "weights": weights, "state": state}


def is_checkpoint_name(name: str) -> bool:
    """Whether ``name`` is the file name of a checkpoint pair's file."""
    return _PAIR.fullmatch(name) is not None


class RunLock:
    """The advisory lock of a run directory, held from :meth:`acquire` to :meth:`release`.

    Attributes:
        previous: the PID of the last process that held it (a run killed or ended before), read
            when the lock is taken, or ``None``: its temporary files are named after it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.previous: int | None = None
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise naming the PID of the run that holds it.

        Raises:
            ConfigError: another process holds the lock.
        """
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no advisory locks to take
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        file = (self.folder / LOCK).open("a+")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise ConfigError(
                f"{self.folder} is in use by another brickwork train (pid {holder})",
                hint="wait for it to end, or choose another --out",
            ) from None
        file.seek(0)
        text = file.read().strip()
        self.previous = int(text) if text.isdigit() else None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        """Drop the lock (the file stays: it is brickwork's, and the next run takes it)."""
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


@contextmanager
def locked(folder: Path) -> Iterator[RunLock]:
    """Hold the lock of ``folder`` for the ``with`` block."""
    lock = RunLock(folder)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
