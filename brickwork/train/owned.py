"""Which files of a run directory are brickwork's: the record of what a run wrote, and the
tidying (``--resume``, ``--force``) that deletes those and nothing else.

A run keeps ``.brickwork-files.json``: every name it writes, recorded before the file is written
(its fixed names when it starts, each checkpoint pair before the pair is written), each
TensorBoard event file once TensorBoard has created it (TensorBoard chooses the name), and the
PID of every process that wrote in the run (a temporary file ``.NAME.PID.tmp`` is named after
its writer, see :func:`brickwork.files.temp_path`). Only these names are ever deleted; nothing is
found by a glob, and a name a run never writes is ignored even when the record lists it.

A run from before the record (or with a damaged one) has as its files only the names a run
always writes, the pair its pointer names and the temporary files of its last writer (the PID in
the lock file); a leftover checkpoint pair or TensorBoard event file of such a run stays where it
is. Resuming it adopts its files into a new record.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from brickwork.files import atomic_write, temp_path
from brickwork.train.run_dir import (
    BOARD,
    CONFIG,
    RECORD,
    RUN_FILES,
    is_checkpoint_name,
    pair_names,
    read_pointer,
)

_EVENTS = re.compile(r"events\.out\.tfevents\.[^/\\]+")
"""The names TensorBoard gives its event files."""


@dataclass
class Record:
    """What a run recorded: the names it wrote (relative to the run) and its writers' PIDs."""

    names: set[str] = field(default_factory=set)
    writers: set[int] = field(default_factory=set)


def is_run_name(name: str) -> bool:
    """Whether a run ever writes ``name``: a fixed name, a checkpoint file, or an event file in
    the ``tensorboard`` folder."""
    if name in RUN_FILES or is_checkpoint_name(name):
        return True
    folder, _, event = name.partition("/")
    return folder == BOARD and _EVENTS.fullmatch(event) is not None


def read_record(folder: Path) -> Record | None:
    """The run's record, or ``None`` for a run from before records or a damaged record."""
    try:
        data = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    names, writers = (data.get(k) if isinstance(data, dict) else None for k in ("files", "writers"))
    if not isinstance(names, list) or not isinstance(writers, list):
        return None
    return Record(
        {n for n in names if isinstance(n, str) and is_run_name(n)},
        {w for w in writers if type(w) is int and w > 0},
    )


def record(folder: Path, names: Iterable[str]) -> None:
    """Add ``names`` and this process (a writer) to the record, before the files are written."""
    current = read_record(folder) or Record()
    new = set(names) - current.names
    if new or os.getpid() not in current.writers:
        _write(folder, Record(current.names | new, current.writers | {os.getpid()}))


def forget(folder: Path, names: Iterable[str]) -> None:
    """Take ``names`` (files deleted) out of the record."""
    current = read_record(folder)
    gone = set(names) & current.names if current is not None else set()
    if current is not None and gone:
        _write(folder, Record(current.names - gone, current.writers))


def _write(folder: Path, content: Record) -> None:
    text = json.dumps({"files": sorted(content.names), "writers": sorted(content.writers)})
    atomic_write(folder / RECORD, lambda tmp: tmp.write_text(text + "\n"))


def record_new_events(folder: Path, before: set[str]) -> None:
    """Record the event files TensorBoard created in the run's ``tensorboard`` folder since it
    held ``before`` (the folder's names then)."""
    board = folder / BOARD
    now = {p.name for p in board.iterdir()} if board.is_dir() else set()
    record(folder, [f"{BOARD}/{name}" for name in sorted(now - before) if _EVENTS.fullmatch(name)])


def next_pair(folder: Path, previous: int | None) -> int:
    """The number of the next checkpoint pair after ``previous``: the first whose names hold no
    file the run did not record (a user's copy named ``checkpoint-2.safetensors`` is skipped,
    never replaced)."""
    content = read_record(folder) or Record()
    n = (previous or 0) + 1
    while any(_taken(folder / name, content) for name in pair_names(n)):
        n += 1
    return n


def _taken(path: Path, content: Record) -> bool:
    exists = path.exists() or path.is_symlink()
    return exists and (path.is_symlink() or path.name not in content.names)


def stale_files(folder: Path, n: int | None, writer: int | None) -> list[Path]:
    """What a killed run left half-done, when its pointer names pair ``n`` (``None``: none):
    the recorded checkpoint files of other pairs, and its writers' temporary files. The live
    pair is never among them.

    Args:
        folder: the run directory.
        n: the live pair.
        writer: the PID of the last process that held the run's lock, or ``None``.
    """
    content = read_record(folder)
    live = set(pair_names(n)) if n is not None else set()
    if content is None:  # from before records: only the temporary files of the pairs near n
        near = [m for m in ((n - 1, n + 1) if n is not None else (1,)) if m >= 1]
        others: list[str] = []
        writing = {name for m in near for name in pair_names(m)}
        writers: set[int] = set()
    else:
        others = sorted(name for name in content.names if is_checkpoint_name(name))
        others = [name for name in others if name not in live]
        writing, writers = set(others), set(content.writers)
    if writer is not None:
        writers.add(writer)
    names = sorted({*RUN_FILES, RECORD, *live, *writing})
    temps = [temp_path(folder / name, pid) for pid in sorted(writers) for name in names]
    return [p for p in (*(folder / name for name in others), *temps) if _regular(folder, p)]


def own_files(folder: Path, writer: int | None) -> list[Path]:
    """Every file of the run brickwork wrote, ``config.json`` (its marker) last: what ``--force``
    deletes, and nothing else."""
    n = read_pointer(folder)
    content = read_record(folder) or Record()
    names = {*RUN_FILES, *(pair_names(n) if n is not None else ()), *content.names} - {CONFIG}
    own = [folder / name for name in sorted(names)]
    own += [p for p in stale_files(folder, n, writer) if p not in own]
    own += [folder / RECORD, folder / CONFIG]
    return [p for p in own if _regular(folder, p)]


def _regular(folder: Path, path: Path) -> bool:
    """Whether ``path`` is a regular file of ``folder`` itself or of a folder in it (no link)."""
    return (
        path.is_file()
        and not path.is_symlink()
        and (path.parent == folder or not path.parent.is_symlink())
    )
