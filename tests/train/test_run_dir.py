"""Run directories: whose they are, their lock, and which files brickwork may delete."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from brickwork.errors import CheckpointError, ConfigError
from brickwork.files import temp_path
from brickwork.train.owned import next_pair, own_files, record, stale_files
from brickwork.train.run_dir import (
    LOCK,
    RECORD,
    RunLock,
    check_new_run,
    check_resume,
    pair_names,
    pointer_content,
    read_pointer,
)


def make_run(folder: Path, n: int | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"brickwork": "0.1.0", "epochs": 3}))
    if n is not None:
        (folder / "checkpoint.json").write_text(json.dumps(pointer_content(n)))
        for name in pair_names(n):
            (folder / name).write_bytes(b"weights")
    return folder


def _user_dir(tmp: Path) -> Path:
    (tmp / "d").mkdir()
    (tmp / "d" / "config.json").write_text('{"learning_rate": 1}')  # someone else's config
    (tmp / "d" / "notes.txt").write_text("mine")
    return tmp / "d"


def _file(tmp: Path) -> Path:
    (tmp / "f").write_text("x")
    return tmp / "f"


def _dangling(tmp: Path) -> Path:
    (tmp / "link").symlink_to(tmp / "nowhere")
    return tmp / "link"


@pytest.mark.parametrize(
    ("place", "force", "message"),
    [
        (
            _user_dir,
            False,
            r"d is not empty and is not a brickwork run \(config\.json, notes\.txt\)",
        ),
        (_user_dir, True, r"is not empty and is not a brickwork run"),  # --force never helps
        (_file, False, r"f is a file, not a directory"),
        (_dangling, False, r"link is a symbolic link to nothing"),
        (lambda tmp: Path("/"), False, r"is the root of the file system"),
        (lambda tmp: make_run(tmp / "r", 2), False, r"r already holds a run"),
    ],
)
def test_new_runs_are_refused_where_they_would_overwrite(
    tmp_path: Path, place: Callable[[Path], Path], force: bool, message: str
) -> None:
    folder = place(tmp_path)
    before = (
        sorted(p.name for p in folder.iterdir())
        if folder.is_dir() and folder != Path("/")
        else None
    )
    with pytest.raises(ConfigError, match=message):
        check_new_run(folder, force=force)
    if before is not None:
        assert sorted(p.name for p in folder.iterdir()) == before  # nothing touched


@pytest.mark.parametrize(
    "place",
    [
        lambda tmp: tmp / "new" / "run",
        lambda tmp: tmp,  # empty
        lambda tmp: (tmp / LOCK).touch() or tmp,  # only brickwork's lock file
    ],
)
def test_new_runs_go_into_new_or_empty_directories(
    tmp_path: Path, place: Callable[[Path], Path]
) -> None:
    check_new_run(place(tmp_path))


def test_force_starts_over_only_a_run_of_brickworks(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", 2)
    check_new_run(run, force=True)


def test_resume_needs_a_run(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"nothing: no config\.json, so there is no run to resume"
    ):
        check_resume(tmp_path / "nothing")
    with pytest.raises(
        ConfigError, match=r"config\.json is not a brickwork run's \(it has no 'brickwork' key\)"
    ):
        check_resume(_user_dir(tmp_path))
    (tmp_path / "d" / "config.json").write_text("{")
    with pytest.raises(ConfigError, match=r"config\.json: damaged \("):
        check_resume(tmp_path / "d")
    check_resume(make_run(tmp_path / "r"))


@pytest.mark.parametrize(
    ("pointer", "message"),
    [
        (
            {
                "n": 1,
                "weights": "../other-run/checkpoint-1.safetensors",
                "state": "checkpoint-1-state.safetensors",
            },
            r"names '\.\./other-run/checkpoint-1\.safetensors' as the weights",
        ),
        (
            {"n": 1, "weights": "checkpoint-1.safetensors", "state": "/etc/passwd"},
            r"names '/etc/passwd' as the state",
        ),
        (
            {
                "n": 2,
                "weights": "checkpoint-1.safetensors",
                "state": "checkpoint-1-state.safetensors",
            },
            r"names 'checkpoint-1\.safetensors' as the weights, not 'checkpoint-2\.safetensors'",
        ),
        ({"n": 0, "weights": "", "state": ""}, r"damaged \(no checkpoint number\)"),
        ({"n": "1"}, r"damaged \(no checkpoint number\)"),
        ([1, 2], r"damaged \(no checkpoint number\)"),
        ("{not json", r"damaged \("),
    ],
)
def test_pointers_name_only_checkpoints_of_their_own_directory(
    tmp_path: Path, pointer: object, message: str
) -> None:
    other = make_run(tmp_path / "other-run", 1)
    run = make_run(tmp_path / "run")
    text = pointer if isinstance(pointer, str) else json.dumps(pointer)
    (run / "checkpoint.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        read_pointer(run)
    assert (other / "checkpoint-1.safetensors").exists()


def test_stale_files_are_the_recorded_leftovers_only(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 3)
    writer = 4242
    record(run, [*pair_names(2), *pair_names(3), *pair_names(4), "tensorboard/events.out.x"])
    ours = [
        *(run / name for name in pair_names(2)),  # killed before the old pair was deleted
        run / pair_names(4)[0],  # killed while the next pair was written
        temp_path(run / "model.safetensors", writer),
        temp_path(run / "checkpoint-4-state.safetensors", writer),
        temp_path(run / RECORD, os.getpid()),  # a writer the record names
    ]
    (run / "tensorboard").mkdir()
    theirs = [
        run / "checkpoint-1.safetensors",  # a user's copy, never recorded
        run / "checkpoint-7.safetensors",
        run / "checkpoint-best.safetensors",
        run / ".notes.tmp",
        temp_path(run / "model.safetensors", writer + 1),  # another process's temporary file
        run / "model.safetensors.bak",
        run / "tensorboard" / "events.out.tfevents.mine",
    ]
    for path in (*ours, *theirs):
        path.write_bytes(b"x")
    assert sorted(stale_files(run, 3, writer)) == sorted(ours)
    live = [run / name for name in pair_names(3)]
    assert set(own_files(run, writer)) == {
        *ours,
        *live,
        run / "config.json",
        run / "checkpoint.json",
        run / RECORD,
    }


def test_a_run_from_before_records_loses_only_exact_names(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 3)  # no record: a run of an earlier brickwork
    writer = 4242
    temps = [
        temp_path(run / "checkpoint-4.safetensors", writer),
        temp_path(run / "curves.png", writer),
    ]
    (run / "tensorboard").mkdir()
    kept = [
        *(run / n for n in (*pair_names(2), *pair_names(4))),
        run / "tensorboard" / "events.out.tfevents.1.h.2.0",
    ]
    for path in (*temps, *kept):
        path.write_bytes(b"x")
    assert sorted(stale_files(run, 3, writer)) == sorted(temps)
    live = [run / name for name in pair_names(3)]
    assert set(own_files(run, writer)) == {
        *temps,
        *live,
        run / "config.json",
        run / "checkpoint.json",
    }


def test_a_record_names_only_what_a_run_writes(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 1)
    (tmp_path / "victim.txt").write_text("mine")
    (run / "notes.txt").write_text("mine")
    names = ["../victim.txt", "notes.txt", "/etc/passwd", "tensorboard/../notes.txt"]
    (run / RECORD).write_text(json.dumps({"files": names, "writers": [1, "2"]}))
    assert tmp_path / "victim.txt" not in own_files(run, None)
    assert run / "notes.txt" not in own_files(run, None)


def test_the_next_pair_skips_names_the_run_did_not_write(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", 1)
    record(run, pair_names(1))
    (run / "checkpoint-2.safetensors").write_bytes(b"a user's copy")
    assert next_pair(run, 1) == 3
    record(run, pair_names(2))  # brickwork's own half-written pair is written again
    assert next_pair(run, 1) == 2


_HOLD = """
import sys, time
from pathlib import Path
from brickwork.train.run_dir import RunLock
lock = RunLock(Path(sys.argv[1]))
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            ConfigError, match=rf"in use by another brickwork train \(pid {holder.pid}\)"
        ):
            RunLock(tmp_path).acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10
    lock = RunLock(tmp_path)
    while True:  # the kernel drops the dead process's lock
        try:
            lock.acquire()
            break
        except ConfigError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert lock.previous == holder.pid
    assert (tmp_path / LOCK).read_text().strip() == str(os.getpid())
    lock.release()
