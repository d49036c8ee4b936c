"""DDP runs stopped from outside: a killed rank, and a run on shards with loader workers stopped
and resumed (in a file of their own, so that pytest-xdist runs them beside test_distributed.py)."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ddp_runs import TIMEOUT, environment, torchrun, train, write_spec
from image_trees import make_tree

from brickwork.train.data import pack


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_spec(tmp_path_factory.mktemp("spec"))


def worker_pids(launcher: int) -> dict[int, int]:
    """Rank → pid of the processes torchrun started."""
    ranks = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
            if int(fields["PPid"]) != launcher:
                continue
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, KeyError):
            continue  # the process has gone, or is not ours
        for entry in environ:
            if entry.startswith(b"RANK="):
                ranks[int(entry[5:])] = int(status.parent.name)
    return ranks


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_a_killed_rank_stops_the_run_with_a_message(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = torchrun("train", str(spec), "--epochs", "200", "--out", str(out))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment()
    )
    deadline = time.monotonic() + TIMEOUT
    while not (out / "checkpoint.json").exists():  # training is under way
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(worker_pids(process.pid)[1], signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = process.communicate(timeout=120)  # no hang: stops well before this
    assert time.monotonic() - killed < 60
    assert process.returncode != 0
    assert "rank 0 of 2 lost contact with another rank" in stderr, stderr[-3000:]
    assert "continue with --resume" in stderr
    assert (out / "model.safetensors").is_file()  # what was saved is kept


@pytest.mark.slow
def test_two_processes_stopped_and_resumed_on_shards_with_workers_end_as_a_straight_run(
    spec: Path, tmp_path: Path
) -> None:
    shards = tmp_path / "shards"  # ten classes, as the spec's last layer has
    photos = make_tree(tmp_path / "photos", {f"c{i}": 8 for i in range(10)}, sizes=(10, 20))
    pack(f"folder:{photos}", shards, 8000)
    options = ["--data", f"shards:{shards}", "--image-size", "8", "--epochs", "4"]
    options += ["--batch-size", "9", "--seed", "3", "--workers", "1"]
    straight = tmp_path / "straight"
    result = train(torchrun("train", str(spec), *options, "--out", str(straight)))
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "run"
    process = subprocess.Popen(
        torchrun("train", str(spec), *options, "--out", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
    )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    while not (out / "checkpoint.json").exists():  # stop it once the first epoch is saved
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert "interrupted" in stderr, stderr[-3000:]
    result = train(torchrun("train", str(spec), "--out", str(out), "--resume"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.safetensors").read_bytes() == (straight / "model.safetensors").read_bytes()
