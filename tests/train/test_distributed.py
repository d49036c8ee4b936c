"""`torchrun --nproc_per_node=2 -m brickwork train`: DDP over gloo on this machine's CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from image_trees import make_tree
from safetensors.torch import load_file

from brickwork.train import distributed
from brickwork.train.data import pack
from brickwork.train.distributed import World

# No batch norm (its statistics are per rank) and no dropout: two processes then compute the
# same gradients as one, up to the order of floating-point sums. 99 a batch: the ranks take 50
# and 49 images, so their losses must be weighted for the mean gradient to be the same.
SPEC = {
    "model": [
        "flatten",
        {"linear": {"out": 64}},
        "relu",
        {"linear": {"out": 10}},
    ]
}
OPTIONS = ["--epochs", "3", "--batch-size", "99", "--no-augment", "--seed", "3"]
TIMEOUT = 240


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", "-m", "brickwork", *args,
    ]  # fmt: skip


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, check=False, env=environment()
    )


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "mlp.json"
    path.write_text(json.dumps(SPEC))
    return path


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory, spec: Path) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "run"
    result = train(torchrun("train", str(spec), *OPTIONS, "--out", str(out)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes, 99 images a step in all (about 49 each)" in result.stdout
    assert result.stdout.count("test accuracy") == 1  # only rank 0 speaks
    return out


def metrics(run: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("n", "size"), [(100, 2), (101, 2), (7, 3), (2, 2), (64, 5), (1000, 8), (3, 4)]
)
def test_each_rank_takes_a_contiguous_share_that_differs_by_one_at_most(
    monkeypatch: pytest.MonkeyPatch, n: int, size: int
) -> None:
    shares = []
    for rank in range(size):
        monkeypatch.setattr(distributed, "current", lambda rank=rank: World(rank, size, rank))
        shares.append(range(n)[distributed.share(n)])
    assert [i for share in shares for i in share] == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(
    two_processes: Path, spec: Path, tmp_path: Path
) -> None:
    single = tmp_path / "single"
    result = train([str(Path(sys.executable).with_name("brickwork")), "train", str(spec), *OPTIONS, "--out", str(single)])  # fmt: skip
    assert result.returncode == 0, result.stderr
    ours, theirs = (
        load_file(two_processes / "model.safetensors"),
        load_file(single / "model.safetensors"),
    )
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], atol=1e-4, rtol=1e-4)
    ddp, one = metrics(two_processes), metrics(single)
    # the metrics are reduced over both ranks: every image counted once, as in one process
    for row_ddp, row_one in zip(ddp, one, strict=True):
        assert row_ddp.keys() == row_one.keys()
        for key in row_ddp.keys() - {"seconds", "epoch"}:
            assert row_ddp[key] == pytest.approx(row_one[key], abs=1e-4), key
    assert ddp[-1]["test_acc"] > 0.75  # it learnt (chance is 0.1)


@pytest.mark.slow
def test_accumulated_micro_batches_under_ddp_end_as_whole_batches(
    two_processes: Path, spec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "accumulated"
    result = train(torchrun("train", str(spec), *OPTIONS, "--accumulate", "3", "--out", str(out)))
    assert result.returncode == 0, result.stderr[-3000:]
    ours, theirs = (
        load_file(out / "model.safetensors"),
        load_file(two_processes / "model.safetensors"),
    )
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_an_interrupted_two_process_run_resumes_to_the_same_weights(
    two_processes: Path, spec: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = torchrun("train", str(spec), *OPTIONS, "--out", str(out))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment()
    )
    deadline = time.monotonic() + TIMEOUT
    while not (out / "checkpoint.json").exists():  # stop it once the first epoch is saved
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # what a scheduler sends; torchrun passes it on
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode != 0
    assert "interrupted" in stderr, stderr[-3000:]
    result = train(torchrun("train", str(spec), "--out", str(out), "--resume"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming" in result.stdout
    assert (out / "model.safetensors").read_bytes() == (
        two_processes / "model.safetensors"
    ).read_bytes()


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
