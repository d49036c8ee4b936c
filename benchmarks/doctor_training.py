"""brickwork.doctor's training checks on a ResNet-18 at 64x64: wall time against plain PyTorch.

The doctor with a loss and an optimizer runs its meta checks, then up to 5 real AdamW steps on a
copy of the model with a random batch of 8 (it stops early once the loss is near 0). The
baseline is the least a user's own check costs: a deepcopy of the model and the passes the doctor
ran, in plain PyTorch (a forward, backward and AdamW step for each step the doctor took, and a
last forward). Both run in one process, interleaved, after a warm-up round. The README says the
training checks take a few seconds on two CPU cores.

    .venv/bin/python benchmarks/doctor_training.py [--reps 5] [--steps 5] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch
from torch import nn

import brickwork
from measure import interleaved

BATCH = 8
SHAPE = (3, 64, 64)


def by_hand(model: nn.Module, steps: int) -> None:
    """A deepcopy, then the doctor's passes in plain PyTorch."""
    work = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(work.parameters(), lr=1e-3)
    x, y = torch.randn(BATCH, *SHAPE), torch.randint(0, 10, (BATCH,))
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(work(x), y).backward()
        optimizer.step()
    nn.functional.cross_entropy(work(x), y).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch's threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = brickwork.create_model("resnet18", n_classes=10)

    def check() -> int:
        report = brickwork.doctor(
            model, SHAPE, loss="cross_entropy", optimizer="adamw", steps=args.steps
        )
        return len(report.losses) - 1

    ran = check()
    tools = {"brickwork.doctor": check, "deepcopy + plain steps": lambda: by_hand(model, ran)}
    times = interleaved(tools, args.reps)
    doctor_s, plain_s = (statistics.median(times[name]) for name in tools)
    spread = {name: (min(t), max(t)) for name, t in times.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    print(
        f"ResNet-18 at 64x64, budget {args.steps}, the doctor ran {ran} AdamW step(s); "
        f"{args.reps} reps: median s (min-max)"
    )
    for name, median in zip(tools, (doctor_s, plain_s), strict=True):
        low, high = spread[name]
        print(f"  {name:<24} {median:6.2f}  ({low:.2f}-{high:.2f})")
    print(f"  ratio doctor / plain     {doctor_s / plain_s:6.2f}")


if __name__ == "__main__":
    main()
