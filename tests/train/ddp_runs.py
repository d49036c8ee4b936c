"""What the DDP tests share: a spec whose two-process run matches one process, and how to start
torchrun. The tests are in two files so that pytest-xdist runs them on two workers at once."""

import json
import os
import subprocess
import sys
from pathlib import Path

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


def write_spec(folder: Path) -> Path:
    path = folder / "mlp.json"
    path.write_text(json.dumps(SPEC))
    return path


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
