"""Does brickwork's CNNClassifier cost anything over the same network written by hand?

Runs forward + backward of the guide's classifier (built by brickwork) and of a hand-written
plain ``nn.Module`` holding the same weights, interleaved in one process (alternating which goes
first), and prints the median time of each, the ratio of the medians and the median of the
per-repetition ratios (each pair ran back to back, so slow drift of the machine cancels).
Target: ratio <= 1.01.

    .venv/bin/python benchmarks/overhead.py [--batch-size 32] [--reps 80] [--size 28]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

import brickwork
from baselines import GuideClassifierByHand

TARGET = 1.01


def step_seconds(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x).sum().backward()
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--size", type=int, default=28, help="input height and width")
    args = parser.parse_args()

    torch.manual_seed(0)
    ours = brickwork.CNNClassifier(
        1, [32, 64], [1024, 512], 10, activation="lrelu", input_shape=(args.size, args.size)
    )
    hand = GuideClassifierByHand(args.size)
    ours_state = list(ours.state_dict().values())
    hand.load_state_dict(dict(zip(hand.state_dict(), ours_state, strict=True)))
    x = torch.randn(args.batch_size, 1, args.size, args.size)
    ours.eval(), hand.eval()  # same batch-norm path for both, and no statistics drift
    torch.testing.assert_close(ours(x), hand(x))
    ours.train(), hand.train()

    times: dict[str, list[float]] = {"hand-written nn.Module": [], "brickwork CNNClassifier": []}
    models = {"hand-written nn.Module": hand, "brickwork CNNClassifier": ours}
    for rep in range(args.warmup + args.reps):
        order = list(models) if rep % 2 == 0 else list(reversed(models))
        for name in order:
            seconds = step_seconds(models[name], x)
            if rep >= args.warmup:
                times[name].append(seconds)

    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["hand-written nn.Module"]
    paired = statistics.median(
        o / h
        for o, h in zip(
            times["brickwork CNNClassifier"], times["hand-written nn.Module"], strict=True
        )
    )
    print(
        f"forward+backward, guide classifier, batch {args.batch_size}, "
        f"{args.size}x{args.size}, {args.reps} reps, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'model':<26} {'median ms':>10} {'ratio':>7}")
    for name, median in medians.items():
        print(f"{name:<26} {median * 1e3:>10.2f} {median / base:>7.3f}")
    print(f"median of per-repetition ratios (brickwork / hand-written): {paired:.3f}")
    verdict = "met" if paired <= TARGET else "NOT met (rerun: shared machines are noisy)"
    print(f"target: paired ratio <= {TARGET}: {verdict}")


if __name__ == "__main__":
    main()
