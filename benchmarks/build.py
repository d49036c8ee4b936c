"""How long does building from a spec take, against writing the class by hand?

1. The guide's classifier: ``brickwork.build(spec)`` (sizes inferred on meta tensors, parameters
   created and initialised on the CPU) against constructing the hand-written ``nn.Module``,
   interleaved in one process; median times and their ratio.
2. A ~1B-parameter MLP built on the ``meta`` device from its spec: seconds and the peak memory
   the process gained, against the same ``nn.Sequential`` constructed by hand on ``meta``.
3. ResNet-50 as a graph spec (``examples/resnet50.yaml``, read from the file, every block's
   ``from:``, ``add`` and ``use:`` wired, shapes inferred on meta tensors) against
   ``create_model("resnet50")`` and the plain-PyTorch torchvision-layout class, all on the CPU,
   interleaved; median times, their ratio and the median of paired ratios. Target: ≤ 1.2.

    .venv/bin/python benchmarks/build.py [--reps 15]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import brickwork
from baselines import GuideClassifierByHand
from measure import timed
from torchvision_resnet import Bottleneck, ResNet

RESNET50_SPEC = Path(__file__).resolve().parents[1] / "examples" / "resnet50.yaml"

GUIDE_SPEC = {
    "input": [1, 28, 28],
    "model": [
        {"conv_block": {"out": 32, "kernel_size": 3, "padding": 1, "activation": "lrelu"}},
        {"conv_block": {"out": 64, "kernel_size": 3, "padding": 1, "activation": "lrelu"}},
        "flatten",
        {"dec_block": {"out": 1024}},
        {"dec_block": {"out": 512}},
        {"linear": {"out": 10}},
    ],
}
MLP_WIDTHS = [4096, 16384, 16384, 16384, 16384, 8192, 1000]
MLP_ITEMS: list[object] = []
for _width in MLP_WIDTHS[1:]:
    MLP_ITEMS += [{"linear": {"out": _width}}, "relu"]
MLP_SPEC = {"input": [MLP_WIDTHS[0]], "model": MLP_ITEMS[:-1]}  # no ReLU after the last layer


def mlp_by_hand() -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(MLP_WIDTHS):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def interleaved(builders: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Seconds of each build, ``reps`` rounds after two warm-up rounds, the order alternating."""
    times: dict[str, list[float]] = {name: [] for name in builders}
    for rep in range(reps + 2):
        for name in list(builders) if rep % 2 == 0 else list(reversed(builders)):
            seconds = timed(builders[name])
            if rep >= 2:
                times[name].append(seconds)
    return times


def show(title: str, times: dict[str, list[float]]) -> None:
    """Medians against the first builder's, and the median of the paired ratios."""
    base_name = next(iter(times))
    base = statistics.median(times[base_name])
    print(f"\n{title}")
    print(f"{'builder':<28} {'median ms':>10} {'ratio':>7} {'paired':>7}")
    for name, seconds in times.items():
        paired = statistics.median(s / b for s, b in zip(seconds, times[base_name], strict=True))
        median = statistics.median(seconds)
        print(f"{name:<28} {median * 1e3:>10.1f} {median / base:>7.2f} {paired:>7.2f}")


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)

    # The 1B-parameter model first, while the process is small, so that its peak shows.
    rss_before = max_rss_mib()
    meta_seconds = timed(lambda: brickwork.build(MLP_SPEC, device="meta"))
    model = brickwork.build(MLP_SPEC, device="meta")
    rss_gained = max_rss_mib() - rss_before
    n_params = brickwork.count_params(model)
    with torch.device("meta"):
        hand_meta = statistics.median(timed(mlp_by_hand) for _ in range(5))
    meta_spec = statistics.median(
        timed(lambda: brickwork.build(MLP_SPEC, device="meta")) for _ in range(5)
    )

    guide = interleaved(
        {
            "hand-written class": GuideClassifierByHand,
            "brickwork.build(spec)": lambda: brickwork.build(GUIDE_SPEC),
        },
        args.reps,
    )
    resnet = interleaved(
        {
            'create_model("resnet50")': lambda: brickwork.create_model("resnet50"),
            "resnet50.yaml graph spec": lambda: brickwork.build(RESNET50_SPEC),
            "torchvision layout class": lambda: ResNet(Bottleneck, [3, 4, 6, 3]),
        },
        args.reps,
    )

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.reps} reps")
    show("guide classifier (51,930,186 parameters) built on the CPU", guide)
    show("ResNet-50 (25,557,032 parameters) built on the CPU", resnet)
    print(f"\nMLP {MLP_WIDTHS}: {n_params:,} parameters on the meta device")
    print(f"{'builder':<24} {'median ms':>10} {'ratio':>7}")
    print(f"{'nn.Sequential by hand':<24} {hand_meta * 1e3:>10.1f} {1:>7.2f}")
    print(f"{'brickwork.build(spec)':<24} {meta_spec * 1e3:>10.1f} {meta_spec / hand_meta:>7.2f}")
    print(
        f"first build: {meta_seconds:.3f} s; peak memory gained: {rss_gained:.1f} MiB "
        f"(the same weights in float32 would take {n_params * 4 / 2**30:.1f} GiB)"
    )


if __name__ == "__main__":
    main()
