"""brickwork's ResNets against the same architecture written in torchvision's style.

Forward + backward of resnet18 and resnet50 at batch 8, 224×224, on the CPU: brickwork's model
and the plain-PyTorch reference (`benchmarks/torchvision_resnet.py`) with the same weights,
interleaved in one process. Prints median times and the median of the paired ratios. Target:
ratio <= 1.02.

    .venv/bin/python benchmarks/families.py [--reps 6] [--batch-size 8] [--size 224]
"""

from __future__ import annotations

import argparse
import functools
import statistics
from collections.abc import Callable

import torch

import brickwork
import torchvision_resnet
from measure import interleaved

TARGET = 1.02


def step(model: torch.nn.Module, x: torch.Tensor) -> None:
    model(x).sum().backward()
    model.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"])
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
        f"{args.size}x{args.size}, forward+backward, {args.reps} reps after 1 warm-up"
    )
    print(f"{'model':<10} {'reference ms':>13} {'brickwork ms':>13} {'paired ratio':>13}")
    for name in args.models:
        torch.manual_seed(0)
        reference = getattr(torchvision_resnet, name)()
        ours = brickwork.create_model(name)
        ours.load_state_dict(reference.state_dict(), strict=True)
        x = torch.randn(args.batch_size, 3, args.size, args.size)
        models = {"reference": reference, "brickwork": ours}
        steps: dict[str, Callable[[], object]] = {
            k: functools.partial(step, m, x) for k, m in models.items()
        }
        times = interleaved(steps, args.reps)
        paired = statistics.median(
            b / r for b, r in zip(times["brickwork"], times["reference"], strict=True)
        )
        ref_ms, ours_ms = (statistics.median(times[k]) * 1e3 for k in ("reference", "brickwork"))
        verdict = "met" if paired <= TARGET else "NOT met"
        row = f"{name:<10} {ref_ms:>13.1f} {ours_ms:>13.1f} {paired:>13.3f}"
        print(f"{row}  target <= {TARGET}: {verdict}")


if __name__ == "__main__":
    main()
