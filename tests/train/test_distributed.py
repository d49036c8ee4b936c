"""`torchrun --nproc_per_node=2 -m brickwork train`: DDP over gloo on this machine's CPU.

One two-process run is the reference of these tests; test_distributed_stops.py has the others."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from ddp_runs import OPTIONS, TIMEOUT, environment, torchrun, train, write_spec
from safetensors.torch import load_file

from brickwork.train import distributed
from brickwork.train.distributed import World


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_spec(tmp_path_factory.mktemp("spec"))


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
