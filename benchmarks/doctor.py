"""brickwork.doctor on a ResNet-50 at 224x224: wall time and peak memory above `import torch`.

The baseline is what a user does without the doctor: run one real forward and backward pass at
the same batch size and see what breaks. Both run in one process, interleaved; peak memory is
measured for each in a fresh process. Targets: doctor <= 2 s and <= 100 MB.

    .venv/bin/python benchmarks/doctor.py [--reps 5] [--batch-size 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

import brickwork
from baselines import ResNet50ByHand
from measure import interleaved, status_kib


def real_step(model: torch.nn.Module, batch: int) -> None:
    model(torch.randn(batch, 3, 224, 224)).sum().backward()
    model.zero_grad(set_to_none=True)


def measure(case: str, batch: int) -> dict[str, object]:
    base = status_kib("VmRSS")
    start = time.perf_counter()
    if case == "doctor-meta":  # the model built on meta: what `brickwork doctor SPEC` does
        with torch.device("meta"):
            model = ResNet50ByHand()
        findings = len(brickwork.doctor(model, (3, 224, 224), batch_size=batch).findings)
    elif case == "doctor-real":
        findings = len(brickwork.doctor(ResNet50ByHand(), (3, 224, 224), batch_size=batch).findings)
    else:
        real_step(ResNet50ByHand(), batch)
        findings = -1
    return {
        "case": case,
        "seconds": time.perf_counter() - start,
        "peak_mib_above_torch": (status_kib("VmHWM") - base) / 1024,
        "findings": findings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.batch_size)))
        return

    model = ResNet50ByHand()
    tools = {
        "brickwork.doctor": lambda: brickwork.doctor(
            model, (3, 224, 224), batch_size=args.batch_size
        ),
        "real forward+backward": lambda: real_step(model, args.batch_size),
    }
    times = interleaved(tools, args.reps)
    doctor_s, real_s = (statistics.median(times[name]) for name in tools)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}")
    print(f"ResNet-50 at 224x224, {args.reps} reps: median ms, warm")
    print(f"  brickwork.doctor        {doctor_s * 1e3:8.1f}")
    print(
        f"  real forward+backward   {real_s * 1e3:8.1f}   (doctor / real = {doctor_s / real_s:.3f})"
    )
    print(
        "fresh process per case: seconds (cold, with building the model) and peak MiB above torch"
    )
    for case in ("doctor-meta", "doctor-real", "real-step"):
        out = subprocess.run(
            [sys.executable, __file__, "--measure", case, "--batch-size", str(args.batch_size)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {case:<12} {r['seconds']:6.2f} s  {r['peak_mib_above_torch']:7.1f} MiB")
    print("  (doctor-real and real-step include the real model's 97.5 MiB of weights)")


if __name__ == "__main__":
    main()
